/* trace_read.c: reads trace files (trace.h) into a qt_trace_data.
 *
 * DESIGN
 * Lines are read with getline and parsed with cJSON one at a time. A
 * header line (it has "quotatop_trace") updates the recorded models and
 * providers by name; a job line becomes a qt_trace_req and its attempts
 * qt_trace_attempt entries in one shared array. Names are interned in an
 * open-addressing table so the arrays hold small integers. After reading,
 * requests are sorted by arrival, their attempt ranges follow them, and
 * times become relative to the first arrival.
 *
 * Attempt start times are recorded ("at_ms": ms after the arrival). Traces
 * written before that have them estimated: the last attempt ends when the
 * result went out (done_ms), earlier ones are spread evenly between the
 * first dispatch (arrival + wait) and the last's start.
 * Traces written before the engine reported attempts (an empty "attempts"
 * array) get attempts synthesized from the result: the answering one with
 * its status and latency, the earlier ones of unknown status.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "quotatop/jobs.h"
#include "quotatop/replay.h"

#define MAX_LINE (1u << 20)

static int intern(qt_trace_data *d, const char *s)
{
    if (!s)
        return -1;
    if (d->n_names * 2 >= d->n_slots) {
        size_t ns = d->n_slots ? d->n_slots * 2 : 256;
        uint32_t *sl = calloc(ns, sizeof *sl);
        if (!sl)
            return -1;
        for (size_t i = 0; i < d->n_names; i++) {
            size_t h = qt_hash_str(QT_HASH_SEED, d->names[i]) & (ns - 1);
            while (sl[h])
                h = (h + 1) & (ns - 1);
            sl[h] = (uint32_t)i + 1;
        }
        free(d->slots);
        d->slots = sl;
        d->n_slots = ns;
    }
    size_t h = qt_hash_str(QT_HASH_SEED, s) & (d->n_slots - 1);
    while (d->slots[h]) {
        if (!strcmp(d->names[d->slots[h] - 1], s))
            return (int)d->slots[h] - 1;
        h = (h + 1) & (d->n_slots - 1);
    }
    if (d->n_names == d->cap_names) {
        size_t nc = d->cap_names ? d->cap_names * 2 : 64;
        char **v = realloc(d->names, nc * sizeof *v);
        if (!v)
            return -1;
        d->names = v;
        d->cap_names = nc;
    }
    char *c = strdup(s);
    if (!c)
        return -1;
    d->names[d->n_names] = c;
    d->slots[h] = (uint32_t)d->n_names + 1;
    return (int)d->n_names++;
}

int qt_trace_find(const qt_trace_data *d, const char *name)
{
    if (!d || !name || !d->n_slots)
        return -1;
    size_t h = qt_hash_str(QT_HASH_SEED, name) & (d->n_slots - 1);
    while (d->slots[h]) {
        if (!strcmp(d->names[d->slots[h] - 1], name))
            return (int)d->slots[h] - 1;
        h = (h + 1) & (d->n_slots - 1);
    }
    return -1;
}

const char *qt_trace_name(const qt_trace_data *d, int idx)
{
    return d && idx >= 0 && (size_t)idx < d->n_names ? d->names[idx] : "";
}

const qt_trace_model *qt_trace_model_of(const qt_trace_data *d, const char *name)
{
    int id = qt_trace_find(d, name);
    for (size_t i = 0; id >= 0 && i < d->n_models; i++)
        if (d->models[i].name == id)
            return &d->models[i];
    return NULL;
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) && v->valuedouble >= 0 ? v->valuedouble : 0;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* Bounded integer of a field (every number from outside is bounded). */
static int inum(const cJSON *o, const char *k, int max)
{
    double v = num(o, k);
    return v > max ? max : (int)v;
}

static void read_header(qt_trace_data *d, const cJSON *h)
{
    d->sessions++;
    if (!d->config_path[0]) {
        snprintf(d->config_path, sizeof d->config_path, "%s", str(h, "config"));
        snprintf(d->config_hash, sizeof d->config_hash, "%s", str(h, "config_fnv1a"));
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(h, "providers")) {
        int name = intern(d, it->string);
        size_t i = 0;
        while (i < d->n_providers && d->providers[i].name != name)
            i++;
        if (i == d->n_providers) {
            qt_trace_provider *np = realloc(d->providers, (i + 1) * sizeof *np);
            if (!np)
                return;
            d->providers = np;
            d->n_providers++;
        }
        d->providers[i] = (qt_trace_provider){ name, num(it, "rpm"), num(it, "tpm") };
    }
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(h, "models")) {
        int name = intern(d, it->string);
        size_t i = 0;
        while (i < d->n_models && d->models[i].name != name)
            i++;
        if (i == d->n_models) {
            qt_trace_model *nm = realloc(d->models, (i + 1) * sizeof *nm);
            if (!nm)
                return;
            d->models = nm;
            d->n_models++;
        }
        qt_trace_model m = { .name = name, .rpm = num(it, "rpm"), .tpm = num(it, "tpm"),
                             .in_usd_mtok = num(it, "input_usd_per_mtok"),
                             .out_usd_mtok = num(it, "output_usd_per_mtok") };
        const char *up = str(it, "upstream_model");
        m.upstream = intern(d, *up ? up : it->string);
        const cJSON *p;
        cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(it, "providers"))
            if (cJSON_IsString(p) && m.n_providers < 8)
                m.providers[m.n_providers++] = intern(d, p->valuestring);
        d->models[i] = m;
    }
}

static qt_trace_attempt *new_attempt(qt_trace_data *d)
{
    if (d->n_att == d->cap_att) {
        size_t nc = d->cap_att ? d->cap_att * 2 : 1024;
        qt_trace_attempt *n = realloc(d->att, nc * sizeof *n);
        if (!n)
            return NULL;
        d->att = n;
        d->cap_att = nc;
    }
    qt_trace_attempt *a = &d->att[d->n_att++];
    memset(a, 0, sizeof *a);
    return a;
}

static int status_of(const char *s)
{
    static const char *names[] = { "ok", "failed", "rejected", "cancelled", "invalid" };
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, names[i]))
            return i;
    return -1;
}

/* Synthesizes attempts for a trace line written without them. */
static void synth_attempts(qt_trace_data *d, qt_trace_req *r, int http_status)
{
    if (r->model_used < 0 || r->cached)
        return;
    int n = r->n_attempts > 16 ? 16 : r->n_attempts;
    for (int i = 0; i < n; i++) {
        qt_trace_attempt *a = new_attempt(d);
        if (!a)
            return;
        a->model = r->model_used;
        a->provider = r->provider;
        a->status = i == n - 1 ? http_status : (r->status == QT_STATUS_OK ? -1 : http_status);
        if (i == n - 1) {
            a->total_ms = (uint32_t)r->latency_ms;
            a->prompt = r->prompt;
            a->completion = r->completion;
        }
        r->n_att++;
    }
}

static void read_job(qt_trace_data *d, const cJSON *o, uint64_t since)
{
    double t = num(o, "t");
    int st = status_of(str(o, "status"));
    if (t < (double)since || st < 0 || st == QT_STATUS_CANCELLED || st == QT_STATUS_INVALID) {
        d->skipped++;
        return;
    }
    if (d->n_reqs == d->cap_reqs) {
        size_t nc = d->cap_reqs ? d->cap_reqs * 2 : 1024;
        qt_trace_req *n = realloc(d->reqs, nc * sizeof *n);
        if (!n)
            return;
        d->reqs = n;
        d->cap_reqs = nc;
    }
    qt_trace_req *r = &d->reqs[d->n_reqs++];
    const char *mu = str(o, "model_used"), *pv = str(o, "provider");
    *r = (qt_trace_req){
        .t_ms = (uint64_t)t, .wf = intern(d, *str(o, "wf") ? str(o, "wf") : "default"),
        .model = intern(d, str(o, "model")), .endpoint = intern(d, *str(o, "endpoint") ? str(o, "endpoint") : "chat"),
        .prio = inum(o, "prio", 10), .chars = (uint32_t)inum(o, "chars", 1 << 30),
        .msgs = inum(o, "msgs", 100000), .max_tokens = inum(o, "max_tokens", 1 << 24),
        .stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "stream")), .status = st,
        .model_used = *mu ? intern(d, mu) : -1, .provider = *pv ? intern(d, pv) : -1,
        .prompt = inum(o, "prompt", 1 << 28), .completion = inum(o, "completion", 1 << 28),
        .cost_usd = num(o, "cost_usd"), .wait_ms = (uint64_t)num(o, "wait_ms"),
        .latency_ms = (uint64_t)num(o, "latency_ms"), .done_ms = (uint64_t)num(o, "done_ms"),
        .att0 = (uint32_t)d->n_att, .n_attempts = inum(o, "n_attempts", 1000),
        .cached = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "cached")),
    };
    if (r->prio < 1)
        r->prio = 5;
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, "attempts"), *it;
    cJSON_ArrayForEach(it, arr) {
        if (r->n_att >= 16)
            break;
        qt_trace_attempt *a = new_attempt(d);
        if (!a)
            break;
        a->model = intern(d, str(it, "model"));
        a->provider = intern(d, str(it, "provider"));
        a->status = inum(it, "status", 999);
        a->ttfb_ms = (uint32_t)inum(it, "ttfb_ms", 1 << 30);
        a->total_ms = (uint32_t)inum(it, "total_ms", 1 << 30);
        a->prompt = inum(it, "prompt", 1 << 28);
        a->completion = inum(it, "completion", 1 << 28);
        a->retry_after_ms = (uint32_t)inum(it, "retry_after_ms", 1 << 30);
        a->limit_rpm = (uint32_t)inum(it, "limit_rpm", 1 << 30);
        a->limit_tpm = (uint32_t)inum(it, "limit_tpm", 1 << 30);
        if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(it, "at_ms"))) {
            /* relative to the arrival for now; finish() adds the arrival */
            a->t_ms = (uint64_t)num(it, "at_ms") > (1ull << 40) ? 1ull << 40 : (uint64_t)num(it, "at_ms");
            a->has_at = 1;
        }
        r->n_att++;
    }
    if (r->n_att == 0)
        synth_attempts(d, r, inum(o, "http_status", 999));
}

static int read_file(qt_trace_data *d, const char *path, uint64_t since)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (n > (ssize_t)MAX_LINE) {
            d->skipped++;
            continue;
        }
        cJSON *o = cJSON_ParseWithLength(line, (size_t)n);
        if (!cJSON_IsObject(o))
            d->skipped++;
        else if (cJSON_GetObjectItemCaseSensitive(o, "quotatop_trace"))
            read_header(d, o);
        else if (d->sessions)
            read_job(d, o, since);
        else
            d->skipped++;   /* a job line before any header (a torn rotation) */
        cJSON_Delete(o);
    }
    free(line);
    fclose(f);
    return 0;
}

static int by_arrival(const void *a, const void *b)
{
    const qt_trace_req *x = a, *y = b;
    return x->t_ms < y->t_ms ? -1 : x->t_ms > y->t_ms;
}

/* Sorts by arrival and makes times relative; attempts keep their indices
 * (each request carries its own range). Estimates attempt start times. */
static void finish(qt_trace_data *d)
{
    qsort(d->reqs, d->n_reqs, sizeof *d->reqs, by_arrival);
    d->t0_wall_ms = d->n_reqs ? d->reqs[0].t_ms : 0;
    for (size_t i = 0; i < d->n_reqs; i++) {
        qt_trace_req *r = &d->reqs[i];
        r->t_ms -= d->t0_wall_ms;
        r->done_ms = r->done_ms > d->t0_wall_ms ? r->done_ms - d->t0_wall_ms : r->t_ms;
        if (r->done_ms < r->t_ms)
            r->done_ms = r->t_ms;
        if (!r->n_att)
            continue;
        qt_trace_attempt *a = &d->att[r->att0];
        int recorded = 1;
        for (uint32_t k = 0; k < r->n_att; k++)
            recorded &= a[k].has_at;
        if (recorded) {   /* start times in the trace: offsets from the arrival */
            for (uint32_t k = 0; k < r->n_att; k++)
                a[k].t_ms += r->t_ms;
            continue;
        }
        uint64_t first = r->t_ms + r->wait_ms;
        uint64_t last_total = a[r->n_att - 1].total_ms;
        uint64_t last = r->done_ms > last_total ? r->done_ms - last_total : first;
        if (last < first)
            last = first;
        for (uint32_t k = 0; k < r->n_att; k++)
            a[k].t_ms = r->n_att == 1 ? last : first + (last - first) * k / (r->n_att - 1);
    }
}

qt_trace_data *qt_trace_load(const char *const *paths, size_t n_paths, uint64_t since_wall_ms,
                             char *err, size_t errlen)
{
    qt_trace_data *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    size_t readable = 0;
    for (size_t i = 0; i < n_paths; i++)
        if (read_file(d, paths[i], since_wall_ms) == 0)
            readable++;
    if (!readable) {
        snprintf(err, errlen, "cannot read %s", n_paths ? paths[n_paths - 1] : "(no trace)");
        qt_trace_data_free(d);
        return NULL;
    }
    if (!d->sessions) {
        snprintf(err, errlen, "%s holds no trace header (not a quotatop trace?)",
                 n_paths ? paths[n_paths - 1] : "");
        qt_trace_data_free(d);
        return NULL;
    }
    finish(d);
    return d;
}

void qt_trace_data_free(qt_trace_data *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n_names; i++)
        free(d->names[i]);
    free(d->names);
    free(d->slots);
    free(d->reqs);
    free(d->att);
    free(d->models);
    free(d->providers);
    free(d);
}
