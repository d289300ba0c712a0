/* cmd_common.c: config loading, signals, progress lines and the human
 * summary shared by run, serve and demo. */
#include "cmd_common.h"

#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "quotatop/clock.h"
#include "quotatop/events.h"
#include "quotatop/ui.h"

static volatile sig_atomic_t signals_seen;   /* written only by the handler */

static void on_signal(int sig)
{
    (void)sig;
    signals_seen++;
}

void qt_cmd_signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int qt_cmd_signal_count(void) { return (int)signals_seen; }

qt_config *qt_cmd_load_config(const char *path)
{
    qt_diag d = { 0 };
    qt_config *cfg = qt_config_load(path, &d);
    qt_diag_print(&d, stderr, path);
    qt_diag_free(&d);
    if (!cfg)
        fprintf(stderr, "%s: invalid config (see `quotatop check -c %s`)\n", path, path);
    return cfg;
}

size_t qt_cmd_warn_unset_keys(const qt_config *cfg, FILE *out, const char *who)
{
    size_t n = 0;
    for (size_t i = 0; i < cfg->n_providers; i++) {
        const qt_provider_cfg *p = &cfg->providers[i];
        if (!p->api_key_env || !*p->api_key_env)
            continue;
        const char *v = getenv(p->api_key_env);
        if (v && *v)
            continue;
        fprintf(out, "%s: warning: providers.%s.api_key_env: $%s is not set; requests to %s will "
                     "be sent without a key and refused (401)\n",
                who, p->name, p->api_key_env, p->name);
        n++;
    }
    return n;
}

int open_readonly(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        errno = EISDIR;
        return -1;
    }
    return fd;
}

static void fmt_limit(char *buf, size_t len, double used, double limit)
{
    if (limit > 0)
        snprintf(buf, len, "%.0f/%.0f", used, limit);
    else
        snprintf(buf, len, "%.0f", used);
}

void qt_cmd_print_progress(FILE *out, const qt_engine_snapshot *s)
{
    fprintf(out, "[%5.1fs] %s done %llu/%llu ok %llu failed %llu rejected %llu cancelled %llu invalid %llu",
            (double)s->uptime_ms / 1000.0, s->paused ? "PAUSED" : "", (unsigned long long)s->done,
            (unsigned long long)s->jobs, (unsigned long long)s->ok, (unsigned long long)s->failed,
            (unsigned long long)s->rejected, (unsigned long long)s->cancelled,
            (unsigned long long)s->invalid);
    fprintf(out, " | queue %zu waiting %zu busy %d/%d", s->queued, s->waiting, s->busy, s->workers);
    for (size_t i = 0; i < s->n_rows; i++) {
        const qt_engine_row *r = &s->rows[i];
        if (r->is_provider || (r->requests == 0 && r->requests_60s == 0))
            continue;
        char rpm[32], tpm[40];
        fmt_limit(rpm, sizeof rpm, (double)r->requests_60s, r->rpm);
        fmt_limit(tpm, sizeof tpm, (double)r->tokens_60s, r->tpm);
        fprintf(out, " | %s rpm %s tpm %s", r->name, rpm, tpm);
        if (!strcmp(r->circuit, "OPEN"))   /* its jobs wait for the probe: say when */
            fprintf(out, " OPEN probe in %llus", (unsigned long long)((r->next_probe_in_ms + 999) / 1000));
        else if (strcmp(r->circuit, "CLOSED"))
            fprintf(out, " %s", r->circuit);
    }
    fprintf(out, " | $%.4f", s->cost_usd);
    if (s->run_limit_usd > 0)
        fprintf(out, "/$%.2f", s->run_limit_usd);
    fputc('\n', out);
    fflush(out);
}

void qt_cmd_print_summary(FILE *out, const qt_engine_snapshot *s, double elapsed_s)
{
    fprintf(out, "quotatop: %llu jobs in %.1fs: %llu ok, %llu failed, %llu rejected, %llu cancelled, "
                 "%llu invalid\n",
            (unsigned long long)s->jobs, elapsed_s, (unsigned long long)s->ok,
            (unsigned long long)s->failed, (unsigned long long)s->rejected,
            (unsigned long long)s->cancelled, (unsigned long long)s->invalid);
    fprintf(out, "quotatop: %llu requests, %llu retries, %llu upstream 429s, %llu fallbacks, "
                 "%llu tokens (%llu in, %llu out), $%.6f spent\n",
            (unsigned long long)s->requests, (unsigned long long)s->retries,
            (unsigned long long)s->upstream_429, (unsigned long long)s->fallbacks,
            (unsigned long long)(s->prompt_tokens + s->completion_tokens),
            (unsigned long long)s->prompt_tokens, (unsigned long long)s->completion_tokens, s->cost_usd);
}

void qt_cmd_print_events(FILE *out, qt_engine *e, uint64_t t0, uint64_t *seq)
{
    qt_event evs[64];
    size_t n;
    uint64_t dropped = 0;
    while ((n = qt_events_since(qt_engine_events(e), *seq, evs, QT_ARRAY_LEN(evs), &dropped)) > 0) {
        if (dropped)
            fprintf(out, "quotatop: %llu events were overwritten before they could be printed\n",
                    (unsigned long long)dropped);
        for (size_t i = 0; i < n; i++) {
            const qt_event *ev = &evs[i];
            double at = ev->mono_ms > t0 ? (double)(ev->mono_ms - t0) / 1000.0 : 0;
            fprintf(out, "[%5.1fs] %-15s %s\n", at, qt_event_type_name(ev->type), ev->msg);
            *seq = ev->seq;
        }
    }
    fflush(out);
}

/* The dashboard lives in src/ui (qt_ui_run returns when the user quits, on
 * SIGINT/SIGTERM, or at once with -1 when the terminal cannot be set up);
 * without one the watch loop prints progress lines. */
void qt_cmd_ctl_on_result(void *ud, const qt_job *job, const qt_result *res, const qt_result_extra *x)
{
    qt_cmd_ctl_tap *t = ud;
    qt_ctl_note_result(t->ctl, res);
    if (t->next)
        t->next(t->next_ud, job, res, x);
}

void qt_cmd_ctl_listen(qt_ctl *ctl, const qt_config *cfg, const char *who, const char *mode)
{
    char path[256], err[400];
    if (qt_ctl_socket_path(cfg->state_dir, mode, path, sizeof path) != QT_OK) {
        fprintf(stderr, "%s: no control socket (%s); `quotatop top` cannot attach\n", who,
                cfg->state_dir && *cfg->state_dir ? "state_dir path too long" : "state_dir is \"\"");
        return;
    }
    if (qt_ctl_listen(ctl, path, err, sizeof err) != QT_OK) {
        fprintf(stderr, "%s: no control socket: %s; `quotatop top` cannot attach\n", who, err);
        return;
    }
    fprintf(stderr, "%s: control socket %s (attach with: quotatop top -c CONFIG)\n", who, path);
}

void qt_cmd_watch(qt_engine *e, qt_ctl *ctl, const char *mode, uint64_t t0_ms, int progress, int stay,
                  int events)
{
    if (mode) {
        qt_ui_opts o = { .mode = mode, .t0_ms = t0_ms, .should_stop = qt_cmd_signal_count,
                         .stay = stay };
        qt_ctl_source *src = qt_ctl_source_local(ctl);
        qt_ui_exit why = src ? qt_ui_run_source(src, &o) : QT_UI_EXIT_NO_TERMINAL;
        qt_ctl_source_free(src);
        if (why != QT_UI_EXIT_NO_TERMINAL)
            return;
        progress = 1;   /* no terminal after all: say something */
    }
    uint64_t next = qt_now_ms() + 1000, seq = 0;
    while (!qt_cmd_signal_count() && !qt_engine_wait_done(e, 100)) {
        if (events)
            qt_cmd_print_events(stderr, e, t0_ms, &seq);
        if (progress && qt_now_ms() >= next) {
            qt_engine_snapshot s;
            if (qt_engine_snapshot_take(e, &s) == QT_OK) {
                qt_cmd_print_progress(stderr, &s);
                qt_engine_snapshot_free(&s);
            }
            next += 1000;
        }
    }
    if (events)
        qt_cmd_print_events(stderr, e, t0_ms, &seq);
}
