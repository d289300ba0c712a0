/* config_read.c: the diagnostics list and the small JSON readers of config.c.
 *
 * Each reader knows the JSON path of what it reads and appends an error
 * ("models.gpt-4o.rpm: must be a number >= 0") or a warning (an unknown key,
 * with the closest known name suggested) to a qt_diag, then carries on, so
 * the user sees every problem at once. Readers leave *out unchanged when the
 * key is absent.
 */
#include "config_int.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- diag */

static void diag_add(char ***list, size_t *n, const char *fmt, va_list ap)
{
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
        return;
    char **grown = realloc(*list, (*n + 1) * sizeof *grown);
    if (!grown) {
        free(msg);
        return;
    }
    grown[(*n)++] = msg;
    *list = grown;
}

__attribute__((format(printf, 2, 3)))
void cfg_err(qt_diag *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_add(&d->errors, &d->n_errors, fmt, ap);
    va_end(ap);
}

__attribute__((format(printf, 2, 3)))
void cfg_warn(qt_diag *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_add(&d->warnings, &d->n_warnings, fmt, ap);
    va_end(ap);
}

void qt_diag_free(qt_diag *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n_errors; i++)
        free(d->errors[i]);
    for (size_t i = 0; i < d->n_warnings; i++)
        free(d->warnings[i]);
    free(d->errors);
    free(d->warnings);
    d->errors = d->warnings = NULL;
    d->n_errors = d->n_warnings = 0;
}

/* An unknown key with a suggestion: a likely root cause of later errors. */
static int is_root_cause(const char *w)
{
    return strstr(w, "unknown key") && strstr(w, "did you mean");
}

void qt_diag_print(const qt_diag *d, FILE *out, const char *origin)
{
    int lift = d->n_errors > 0;
    if (lift)
        for (size_t i = 0; i < d->n_warnings; i++)
            if (is_root_cause(d->warnings[i]))
                fprintf(out, "%s: warning: %s\n", origin, d->warnings[i]);
    for (size_t i = 0; i < d->n_errors; i++)
        fprintf(out, "%s: error: %s\n", origin, d->errors[i]);
    for (size_t i = 0; i < d->n_warnings; i++)
        if (!lift || !is_root_cause(d->warnings[i]))
            fprintf(out, "%s: warning: %s\n", origin, d->warnings[i]);
}

/* ------------------------------------------------------ name suggestions */

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return SIZE_MAX;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            size_t best = diag + cost;
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* Returns the candidate closest to name when it is plausibly a typo, else
 * NULL. The returned pointer is one of the candidates. */
static const char *closest(const char *name, const char *const *cands, size_t n)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(name, cands[i]);
        if (d < best_d) {
            best_d = d;
            best = cands[i];
        }
    }
    size_t len = strlen(name);
    size_t allowed = len <= 4 ? 1 : len <= 8 ? 2 : 3;
    return best_d <= allowed ? best : NULL;
}

const char *qt_config_suggest(const char *name, const char *const *cands, size_t n)
{
    return name && cands ? closest(name, cands, n) : NULL;
}

/* Formats ` (did you mean "x"?)` into buf, or an empty string. */
const char *cfg_hint(char *buf, size_t len, const char *name,
                     const char *const *cands, size_t n)
{
    const char *c = closest(name, cands, n);
    if (c)
        snprintf(buf, len, " (did you mean \"%s\"?)", c);
    else
        buf[0] = '\0';
    return buf;
}

/* -------------------------------------------------------------- readers */

/* The separator between a JSON path and a key: none at the top level. */
static const char *dot(const char *path) { return *path ? "." : ""; }

/* Warns about every key of obj not in known. */
void cfg_check_keys(qt_diag *d, const cJSON *obj, const char *path,
                       const char *const *known, size_t n)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, obj) {
        int found = 0;
        for (size_t i = 0; i < n && !found; i++)
            found = !strcmp(it->string, known[i]);
        if (!found) {
            char h[96];
            cfg_warn(d, "%s%s%s: unknown key, ignored%s", path, *path ? "." : "",
                 it->string, cfg_hint(h, sizeof h, it->string, known, n));
        }
    }
}

/* Reads an optional number in [lo, hi] into *out (unchanged when absent). */
void cfg_get_num(qt_diag *d, const cJSON *obj, const char *path,
                    const char *key, double lo, double hi, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return;
    if (!cJSON_IsNumber(v)) {
        cfg_err(d, "%s%s%s: must be a number", path, dot(path), key);
        return;
    }
    if (v->valuedouble < lo || v->valuedouble > hi) {
        if (hi >= 1e300)
            cfg_err(d, "%s%s%s: %g is out of range (must be >= %g)", path, dot(path), key, v->valuedouble, lo);
        else
            cfg_err(d, "%s%s%s: %g is out of range (must be %g to %g)", path, dot(path), key,
                v->valuedouble, lo, hi);
        return;
    }
    *out = v->valuedouble;
}

void cfg_get_long(qt_diag *d, const cJSON *obj, const char *path,
                     const char *key, long lo, long hi, long *out)
{
    double v = (double)*out;
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    /* Whole and within long's range: (long) of 1e300 is undefined, so the
     * range is checked first (cfg_get_num then names the bounds). */
    if (j && cJSON_IsNumber(j) && j->valuedouble > -9.2e18 && j->valuedouble < 9.2e18
        && j->valuedouble != (double)(long)j->valuedouble) {
        cfg_err(d, "%s%s%s: must be a whole number", path, dot(path), key);
        return;
    }
    cfg_get_num(d, obj, path, key, (double)lo, (double)hi, &v);
    /* (double)LONG_MAX rounds up: clamp rather than convert at the edges. */
    *out = v >= (double)hi ? hi : v <= (double)lo ? lo : (long)v;
}

void cfg_get_int(qt_diag *d, const cJSON *obj, const char *path,
                    const char *key, int lo, int hi, int *out)
{
    long v = *out;
    cfg_get_long(d, obj, path, key, lo, hi, &v);
    *out = (int)v;
}

/* Reads an optional string; *out is replaced by a copy (old value freed). */
void cfg_get_str(qt_diag *d, const cJSON *obj, const char *path,
                    const char *key, char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return;
    if (!cJSON_IsString(v)) {
        cfg_err(d, "%s%s%s: must be a string", path, dot(path), key);
        return;
    }
    free(*out);
    *out = strdup(v->valuestring);
}

/* Returns the object at key, NULL when absent; an error when not an object. */
const cJSON *cfg_get_obj(qt_diag *d, const cJSON *obj, const char *path, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (v && !cJSON_IsObject(v)) {
        cfg_err(d, "%s%s%s: must be an object", path, *path ? "." : "", key);
        return NULL;
    }
    return v;
}

/* Reads an array of strings; NULL entries are skipped with an error. */
char **cfg_get_str_array(qt_diag *d, const cJSON *obj, const char *path,
                            const char *key, size_t *n)
{
    *n = 0;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return NULL;
    if (!cJSON_IsArray(v)) {
        cfg_err(d, "%s%s%s: must be an array of strings", path, dot(path), key);
        return NULL;
    }
    int count = cJSON_GetArraySize(v);
    char **out = calloc((size_t)count + 1, sizeof *out);
    if (!out)
        return NULL;
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, v) {
        if (!cJSON_IsString(it))
            cfg_err(d, "%s%s%s[%d]: must be a string", path, dot(path), key, i);
        else
            out[(*n)++] = strdup(it->valuestring);
        i++;
    }
    return out;
}

