/* translate_int.h: helpers shared by the translate_*.c files (private).
 *
 * The translation files build on the provider helpers (provider_int.h: the
 * error formatter, field getters, the growing string) and add two cJSON
 * conveniences that free what they cannot attach. Thread-safety: as
 * translate.h.
 */
#ifndef QT_TRANSLATE_INT_H
#define QT_TRANSLATE_INT_H

#include "quotatop/translate.h"

#include "provider_int.h"

#define tr_errf qt_prov_errf
typedef sbuf tr_sbuf;

static inline const char *tr_str(const cJSON *o, const char *k) { return qt_prov_get_str(o, k); }
static inline bool tr_count(const cJSON *o, const char *k, long *out) { return qt_prov_get_count(o, k, out); }
static inline bool tr_sb_adds(tr_sbuf *b, const char *s) { return sb_adds(b, s ? s : ""); }

/* Appends item to arr; deletes it and returns false when it cannot (item
 * NULL counts as out of memory). */
static inline bool tr_push(cJSON *arr, cJSON *item)
{
    if (item == NULL)
        return false;
    if (!cJSON_AddItemToArray(arr, item)) {
        cJSON_Delete(item);
        return false;
    }
    return true;
}

/* Adds a deep copy of v to obj under key. */
static inline bool tr_add_dup(cJSON *obj, const char *key, const cJSON *v)
{
    cJSON *d = cJSON_Duplicate(v, 1);
    if (d == NULL)
        return false;
    if (!cJSON_AddItemToObject(obj, key, d)) {
        cJSON_Delete(d);
        return false;
    }
    return true;
}

/* Anthropic usage -> OpenAI usage object (prompt_tokens = input + cache
 * reads + cache writes; prompt_tokens_details.cached_tokens = reads;
 * cache_creation_input_tokens kept as a field of its own). NULL on NOMEM. */
cJSON *tr_usage_to_openai(const cJSON *anth_usage);

#endif /* QT_TRANSLATE_INT_H */
