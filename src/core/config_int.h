/* config_int.h: what config.c and config_read.c share (not public).
 * The readers append to a qt_diag and never stop at the first problem; see
 * config_read.c. Thread-safety: as config.c (one thread per qt_diag).
 */
#ifndef QT_CONFIG_INT_H
#define QT_CONFIG_INT_H

#include <stddef.h>

#include <cJSON.h>

#include "quotatop/config.h"

/* Appends an error / a warning (printf format) to d. */
void cfg_err(qt_diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cfg_warn(qt_diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes " (did you mean \"x\"?)" into buf for the candidate closest to name,
 * or "" when none is close; returns buf. */
const char *cfg_hint(char *buf, size_t len, const char *name,
                     const char *const *cands, size_t n);

/* Warns about every key of obj that is not in known. */
void cfg_check_keys(qt_diag *d, const cJSON *obj, const char *path,
                    const char *const *known, size_t n);

/* Optional readers of obj[key] at JSON path `path`: a number in [lo, hi], a
 * whole number, a string (the old *out is freed), an object (NULL when
 * absent), an array of strings (*n entries, NULL-terminated, caller frees).
 * On a wrong type or range they add an error and leave *out unchanged. */
void cfg_get_num(qt_diag *d, const cJSON *obj, const char *path,
                 const char *key, double lo, double hi, double *out);
void cfg_get_long(qt_diag *d, const cJSON *obj, const char *path,
                  const char *key, long lo, long hi, long *out);
void cfg_get_int(qt_diag *d, const cJSON *obj, const char *path,
                 const char *key, int lo, int hi, int *out);
void cfg_get_str(qt_diag *d, const cJSON *obj, const char *path,
                 const char *key, char **out);
const cJSON *cfg_get_obj(qt_diag *d, const cJSON *obj, const char *path, const char *key);
char **cfg_get_str_array(qt_diag *d, const cJSON *obj, const char *path,
                         const char *key, size_t *n);

#endif /* QT_CONFIG_INT_H */
