/* mock_spec.c: the small pure helpers of the simulated provider.
 *
 * Model specs ("gpt-4o:rpm=1200,tpm=40000,fail=0.1,outage=5-15"), the
 * default options, the PRNG (splitmix64: one 64-bit state, guarded by the
 * mock's lock, so faults are reproducible for a given --seed and sequential
 * client) and the two time formats providers put in rate-limit headers: Go
 * durations (OpenAI x-ratelimit-reset-*) and RFC 3339 (anthropic-ratelimit-*-reset).
 * Nothing here takes a lock or does I/O.
 */
#include "quotatop/mock.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mock_int.h"

void qt_mock_opts_init(qt_mock_opts *o)
{
    memset(o, 0, sizeof *o);
    o->kind = QT_MOCK_OPENAI;
    o->seed = 0x5eed;
}

void mock_go_duration(uint64_t ms, char *buf, size_t len)
{
    if (ms == 0) {
        snprintf(buf, len, "0s");
        return;
    }
    if (ms < 1000) {
        snprintf(buf, len, "%llums", (unsigned long long)ms);
        return;
    }
    uint64_t h = ms / 3600000, m = ms / 60000 % 60, s = ms / 1000 % 60, frac = ms % 1000;
    char sec[32];
    if (frac) {
        /* Go prints the fraction without trailing zeros: 1.5s, 1.25s, 1.005s */
        char f[8];
        snprintf(f, sizeof f, "%03llu", (unsigned long long)frac);
        for (int i = 2; i > 0 && f[i] == '0'; i--)
            f[i] = '\0';
        snprintf(sec, sizeof sec, "%llu.%ss", (unsigned long long)s, f);
    } else {
        snprintf(sec, sizeof sec, "%llus", (unsigned long long)s);
    }
    if (h)
        snprintf(buf, len, "%lluh%llum%s", (unsigned long long)h, (unsigned long long)m, sec);
    else if (m)
        snprintf(buf, len, "%llum%s", (unsigned long long)m, sec);
    else
        snprintf(buf, len, "%s", sec);
}

void mock_rfc3339(uint64_t wall_ms, char *buf, size_t len)
{
    time_t t = (time_t)(wall_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- model specs ---- */

static bool parse_u64(const char *s, uint64_t *out)
{
    if (!*s || *s == '-' || *s == '+')
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

static bool parse_u32(const char *s, uint32_t *out)
{
    uint64_t v;
    if (!parse_u64(s, &v) || v > 3600000)   /* an hour of latency is plenty */
        return false;
    *out = (uint32_t)v;
    return true;
}

static bool parse_seconds(const char *s, uint64_t *ms)
{
    if (!*s || *s == '-' || *s == '+')
        return false;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v) || v < 0 || v > 1e9)
        return false;
    *ms = (uint64_t)llround(v * 1000.0);
    return true;
}

static qt_err set_key(qt_mock_model_opts *o, const char *key, const char *val,
                      char *err, size_t errlen)
{
    if (!strcmp(key, "rpm")) {
        if (parse_u64(val, &o->rpm)) return QT_OK;
    } else if (!strcmp(key, "tpm")) {
        if (parse_u64(val, &o->tpm)) return QT_OK;
    } else if (!strcmp(key, "context")) {
        if (parse_u64(val, &o->context_window)) return QT_OK;
    } else if (!strcmp(key, "completion")) {
        if (parse_u64(val, &o->completion_tokens)) return QT_OK;
    } else if (!strcmp(key, "latency")) {
        if (parse_u32(val, &o->latency_ms)) return QT_OK;
    } else if (!strcmp(key, "jitter")) {
        if (parse_u32(val, &o->jitter_ms)) return QT_OK;
    } else if (!strcmp(key, "fail") || !strcmp(key, "cache") || !strcmp(key, "cache_write")) {
        char *end;
        errno = 0;
        double f = strtod(val, &end);
        if (*val && !errno && !*end && f >= 0 && f <= 1) {
            *(key[0] == 'f' ? &o->fail_rate : key[5] ? &o->cache_write_ratio : &o->cache_ratio) = f;
            return QT_OK;
        }
    } else if (!strcmp(key, "dist")) {
        if (!strcmp(val, "uniform")) { o->jitter_dist = QT_MOCK_JITTER_UNIFORM; return QT_OK; }
        if (!strcmp(val, "exp"))     { o->jitter_dist = QT_MOCK_JITTER_EXP;     return QT_OK; }
    } else if (!strcmp(key, "outage")) {
        char a[64];
        const char *dash = strchr(val, '-');
        size_t al = dash ? (size_t)(dash - val) : 0;
        uint64_t s, e;
        if (dash && al < sizeof a) {
            memcpy(a, val, al);
            a[al] = '\0';
            if (parse_seconds(a, &s) && parse_seconds(dash + 1, &e) && e > s) {
                o->outage_start_ms = s;
                o->outage_end_ms = e;
                return QT_OK;
            }
        }
        snprintf(err, errlen, "outage=%s: expected START-END in seconds with END > START", val);
        return QT_ERR_INVALID;
    } else {
        snprintf(err, errlen, "unknown key '%s' (known: rpm, tpm, fail, latency, jitter, "
                 "dist, outage, context, completion, cache, cache_write)", key);
        return QT_ERR_INVALID;
    }
    snprintf(err, errlen, "%s=%s: bad value", key, val);
    return QT_ERR_INVALID;
}

qt_err qt_mock_parse_model(const char *spec, const qt_mock_model_opts *defaults,
                           qt_mock_model_opts *out, char *err, size_t errlen)
{
    if (defaults)
        *out = *defaults;
    else
        memset(out, 0, sizeof *out);
    out->name[0] = '\0';

    const char *eq = strchr(spec, '=');
    const char *colon = NULL;
    for (const char *p = spec; *p && (!eq || p < eq); p++)
        if (*p == ':')
            colon = p;
    if (eq && !colon) {
        snprintf(err, errlen, "model spec '%s': expected NAME:key=value,...", spec);
        return QT_ERR_INVALID;
    }
    size_t nlen = colon ? (size_t)(colon - spec) : strlen(spec);
    if (nlen == 0 || nlen >= sizeof out->name) {
        snprintf(err, errlen, "model spec '%s': model name empty or longer than %d bytes",
                 spec, QT_MOCK_NAME_MAX - 1);
        return QT_ERR_INVALID;
    }
    memcpy(out->name, spec, nlen);
    out->name[nlen] = '\0';
    if (!colon)
        return QT_OK;

    char *rest = strdup(colon + 1);
    if (!rest) {
        snprintf(err, errlen, "out of memory");
        return QT_ERR_NOMEM;
    }
    qt_err rc = QT_OK;
    char *save = NULL;
    for (char *kv = strtok_r(rest, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *e = strchr(kv, '=');
        if (!e) {
            snprintf(err, errlen, "model %s: '%s' is not key=value", out->name, kv);
            rc = QT_ERR_INVALID;
            break;
        }
        *e = '\0';
        char msg[200];
        rc = set_key(out, kv, e + 1, msg, sizeof msg);
        if (rc) {
            snprintf(err, errlen, "model %s: %s", out->name, msg);
            break;
        }
    }
    free(rest);
    return rc;
}
