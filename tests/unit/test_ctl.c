/* test_ctl.c: the control plane's wire form (suite "ctl"): frames, job
 * details and commands survive JSON both ways, and reading is bounded
 * (arrays capped, strings cut to their buffers, numbers clamped, wrong
 * types ignored), because `quotatop top` reads what another process sent.
 * The list filter of the dashboard (qt_ui_filter_match) is checked here too.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "quotatop/ctl.h"
#include "quotatop/ui.h"

static qt_ctl_frame sample_frame(void)
{
    qt_ctl_frame f;
    memset(&f, 0, sizeof f);
    snprintf(f.mode, sizeof f.mode, "serve");
    f.finished = 1;
    f.snap.uptime_ms = 12345;
    f.snap.paused = 1;
    f.snap.jobs = 210;
    f.snap.rejected = 200;
    f.snap.cost_usd = 0.0347;
    f.snap.prompt_tokens = 9000;
    f.snap.cached_tokens = 6000;
    f.snap.cache_write_tokens = 1200;
    f.snap.n_rows = 2;
    f.snap.rows = calloc(2, sizeof *f.snap.rows);
    snprintf(f.snap.rows[0].name, sizeof f.snap.rows[0].name, "gpt-4o");
    f.snap.rows[0].rpm = 540;
    f.snap.rows[0].requests_60s = 50;
    f.snap.rows[0].rps[119] = 7;
    f.snap.rows[0].cached_tokens = 4000;
    f.snap.rows[0].cache_write_tokens = 800;
    snprintf(f.snap.rows[0].circuit, sizeof f.snap.rows[0].circuit, "OPEN");
    snprintf(f.snap.rows[1].name, sizeof f.snap.rows[1].name, "openai");
    f.snap.rows[1].is_provider = 1;
    f.snap.n_workflows = 1;
    f.snap.workflows = calloc(1, sizeof *f.snap.workflows);
    snprintf(f.snap.workflows[0].name, sizeof f.snap.workflows[0].name, "nightly");
    f.snap.workflows[0].limit_usd = 5;
    f.snap.workflows[0].queued = 3;
    f.n_jobs = f.jobs_total = 2;
    f.jobs = calloc(2, sizeof *f.jobs);
    snprintf(f.jobs[0].id, sizeof f.jobs[0].id, "job-1");
    f.jobs[0].state = QT_JOB_WAIT_BACKOFF;
    f.jobs[0].priority = 3;
    f.jobs[0].aged_priority = 2;
    f.jobs[0].until_in_ms = 1200;
    snprintf(f.jobs[0].wait_on, sizeof f.jobs[0].wait_on, "backoff after 503");
    snprintf(f.jobs[1].id, sizeof f.jobs[1].id, "job-2");
    f.jobs[1].state = QT_JOB_STREAMING;
    f.qcounts.total = 4;
    f.qcounts.by_priority[2] = 4;
    f.n_events = 1;
    f.events = calloc(1, sizeof *f.events);
    f.events[0].seq = 99;
    f.events[0].type = QT_EV_FALLBACK;
    snprintf(f.events[0].msg, sizeof f.events[0].msg, "fallback gpt-4o -> claude");
    f.n_failed = f.failed_total = 1;
    f.failed = calloc(1, sizeof *f.failed);
    snprintf(f.failed[0].id, sizeof f.failed[0].id, "job-0");
    snprintf(f.failed[0].status, sizeof f.failed[0].status, "rejected");
    snprintf(f.failed[0].error, sizeof f.failed[0].error, "budget: run_usd exhausted");
    return f;
}

Test(ctl, frame_survives_json)
{
    qt_ctl_frame f = sample_frame(), g;
    char *js = qt_ctl_frame_to_json(&f);
    cr_assert_not_null(js);
    cr_assert_eq(qt_ctl_frame_from_json(js, strlen(js), &g), QT_OK);
    cr_assert_str_eq(g.mode, "serve");
    cr_assert_eq(g.finished, 1);
    cr_assert_eq(g.snap.uptime_ms, 12345);
    cr_assert_eq(g.snap.paused, 1);
    cr_assert_eq(g.snap.rejected, 200, "rejected stays rejected, not failed");
    cr_assert_float_eq(g.snap.cost_usd, 0.0347, 1e-12);
    cr_assert_eq(g.snap.prompt_tokens, 9000);
    cr_assert_eq(g.snap.cached_tokens, 6000, "the prompt-cache parts reach `top` too");
    cr_assert_eq(g.snap.cache_write_tokens, 1200);
    cr_assert_eq(g.snap.rows[0].cached_tokens, 4000);
    cr_assert_eq(g.snap.rows[0].cache_write_tokens, 800);
    cr_assert_eq(g.snap.n_rows, 2);
    cr_assert_str_eq(g.snap.rows[0].name, "gpt-4o");
    cr_assert_str_eq(g.snap.rows[0].circuit, "OPEN");
    cr_assert_float_eq(g.snap.rows[0].rpm, 540, 1e-9);
    cr_assert_eq(g.snap.rows[0].requests_60s, 50);
    cr_assert_eq(g.snap.rows[0].rps[119], 7);
    cr_assert_eq(g.snap.rows[1].is_provider, 1);
    cr_assert_str_eq(g.snap.workflows[0].name, "nightly");
    cr_assert_eq(g.snap.workflows[0].queued, 3);
    cr_assert_eq(g.n_jobs, 2);
    cr_assert_str_eq(g.jobs[0].id, "job-1");
    cr_assert_eq(g.jobs[0].state, QT_JOB_WAIT_BACKOFF);
    cr_assert_eq(g.jobs[0].aged_priority, 2);
    cr_assert_eq(g.jobs[0].until_in_ms, 1200);
    cr_assert_str_eq(g.jobs[0].wait_on, "backoff after 503");
    cr_assert_eq(g.jobs[1].state, QT_JOB_STREAMING);
    cr_assert_eq(g.qcounts.total, 4);
    cr_assert_eq(g.qcounts.by_priority[2], 4);
    cr_assert_eq(g.n_events, 1);
    cr_assert_eq(g.events[0].seq, 99);
    cr_assert_eq(g.events[0].type, QT_EV_FALLBACK);
    cr_assert_str_eq(g.events[0].msg, "fallback gpt-4o -> claude");
    cr_assert_eq(g.n_failed, 1);
    cr_assert_str_eq(g.failed[0].status, "rejected");
    cr_assert_str_eq(g.failed[0].error, "budget: run_usd exhausted");
    free(js);
    qt_ctl_frame_free(&f);
    qt_ctl_frame_free(&g);
}

Test(ctl, frame_reading_is_bounded)
{
    /* 2000 jobs (capped), an id longer than its buffer, numbers out of range,
     * wrong types, an unknown state */
    size_t cap = 2000 * 64 + 4096;
    char *js = malloc(cap), *p = js;
    p += sprintf(p, "{\"mode\":\"a-very-long-mode-name-indeed\",\"snapshot\":{\"uptime_ms\":-5,\"paused\":\"yes\","
                    "\"jobs\":1e300,\"rows\":[{\"name\":\"%0200d\",\"rpm\":1e300,\"rps\":[1,2,3,-4,1e20]}]},"
                    "\"jobs\":[", 7);
    for (int i = 0; i < 2000; i++)
        p += sprintf(p, "%s{\"id\":\"j%d\",\"state\":\"bogus\",\"priority\":99999999999}", i ? "," : "", i);
    sprintf(p, "],\"events\":{\"not\":\"an array\"}}");
    qt_ctl_frame g;
    cr_assert_eq(qt_ctl_frame_from_json(js, strlen(js), &g), QT_OK);
    cr_assert_eq(g.n_jobs, QT_CTL_MAX_JOBS, "jobs capped at %d, got %zu", QT_CTL_MAX_JOBS, g.n_jobs);
    cr_assert_eq(strlen(g.mode), sizeof g.mode - 1, "mode cut to its buffer");
    cr_assert_eq(strlen(g.snap.rows[0].name), sizeof g.snap.rows[0].name - 1);
    cr_assert_eq(g.snap.uptime_ms, 0, "negative clamps to 0");
    cr_assert_eq(g.snap.paused, 0, "a string is not a number");
    cr_assert(g.snap.jobs <= 9e15);
    cr_assert(g.snap.rows[0].rpm <= 1e15);
    cr_assert_eq(g.snap.rows[0].rps[2], 3);
    cr_assert_eq(g.snap.rows[0].rps[3], 0, "negative sample clamps to 0");
    cr_assert_eq(g.jobs[0].state, QT_JOB_QUEUED, "an unknown state reads as the zero state");
    cr_assert(g.jobs[0].priority <= 1000000000);
    cr_assert_eq(g.n_events, 0);
    qt_ctl_frame_free(&g);
    free(js);
    cr_assert_neq(qt_ctl_frame_from_json("[1,2]", 5, &g), QT_OK);
    cr_assert_neq(qt_ctl_frame_from_json("{\"mode\":", 8, &g), QT_OK);
}

/* backend.kind "redis": the fleet's view rides in the frame, so `top`
 * attached to one process shows every process of the fleet. */
Test(ctl, fleet_survives_json_and_is_bounded)
{
    qt_ctl_frame f = sample_frame(), g;
    char *js = qt_ctl_frame_to_json(&f);
    cr_assert_null(strstr(js, "\"fleet\""), "no fleet object with the local backend");
    cr_assert_eq(qt_ctl_frame_from_json(js, strlen(js), &g), QT_OK);
    cr_assert_eq(g.has_fleet, 0);
    qt_ctl_frame_free(&g);
    free(js);

    f.has_fleet = 1;
    qt_backend_view *v = &f.fleet;
    v->up = 1;
    v->paused = 1;
    v->n_procs = 2;
    snprintf(v->procs[0].host, sizeof v->procs[0].host, "web-1");
    v->procs[0].pid = 4242;
    snprintf(v->procs[0].mode, sizeof v->procs[0].mode, "serve");
    v->procs[0].in_flight = 7;
    v->procs[0].self = 1;
    snprintf(v->procs[1].host, sizeof v->procs[1].host, "batch-2");
    v->procs[1].pid = 99;
    snprintf(v->procs[1].mode, sizeof v->procs[1].mode, "run");
    v->n_rates = 1;
    snprintf(v->rates[0].name, sizeof v->rates[0].name, "model:gpt-4o");
    v->rates[0].requests_60s = 321;
    v->rates[0].tokens_60s = 45678;
    v->rates[0].rpm = 500;
    v->rates[0].tpm = -1;
    v->rates[0].conc = -1;
    v->n_wf_paused = 1;
    snprintf(v->wf_paused[0], sizeof v->wf_paused[0], "nightly");
    v->day_spent_usd = 1.25;
    v->day_reserved_usd = 0.5;
    v->fleet_in_flight = 7;
    v->admits = 1000;
    js = qt_ctl_frame_to_json(&f);
    cr_assert_eq(qt_ctl_frame_from_json(js, strlen(js), &g), QT_OK);
    cr_assert_eq(g.has_fleet, 1);
    cr_assert_eq(g.fleet.up, 1);
    cr_assert_eq(g.fleet.paused, 1);
    cr_assert_eq(g.fleet.n_procs, 2);
    cr_assert_str_eq(g.fleet.procs[0].host, "web-1");
    cr_assert_eq(g.fleet.procs[0].pid, 4242);
    cr_assert_str_eq(g.fleet.procs[0].mode, "serve");
    cr_assert_eq(g.fleet.procs[0].in_flight, 7);
    cr_assert_eq(g.fleet.procs[0].self, 1);
    cr_assert_str_eq(g.fleet.procs[1].host, "batch-2");
    cr_assert_eq(g.fleet.procs[1].self, 0);
    cr_assert_eq(g.fleet.n_rates, 1);
    cr_assert_str_eq(g.fleet.rates[0].name, "model:gpt-4o");
    cr_assert_eq(g.fleet.rates[0].requests_60s, 321);
    cr_assert_eq(g.fleet.rates[0].tokens_60s, 45678);
    cr_assert_float_eq(g.fleet.rates[0].rpm, 500, 1e-9);
    cr_assert_float_eq(g.fleet.rates[0].tpm, -1, 1e-9, "no override stays -1");
    cr_assert_eq(g.fleet.rates[0].conc, -1);
    cr_assert_eq(g.fleet.n_wf_paused, 1);
    cr_assert_str_eq(g.fleet.wf_paused[0], "nightly");
    cr_assert_float_eq(g.fleet.day_spent_usd, 1.25, 1e-12);
    cr_assert_float_eq(g.fleet.day_reserved_usd, 0.5, 1e-12);
    cr_assert_eq(g.fleet.fleet_in_flight, 7);
    cr_assert_eq(g.fleet.admits, 1000);
    qt_ctl_frame_free(&g);
    free(js);
    f.has_fleet = 0;
    qt_ctl_frame_free(&f);

    /* another process's frame: 100 processes (capped), a host longer than
     * its buffer, wrong types */
    size_t cap = 100 * 200 + 4096;
    char *big = malloc(cap), *p = big;
    p += sprintf(p, "{\"mode\":\"serve\",\"fleet\":{\"up\":\"yes\",\"procs\":[");
    for (int i = 0; i < 100; i++)
        p += sprintf(p, "%s{\"host\":\"%0100d\",\"pid\":%d,\"in_flight\":-3}", i ? "," : "", i, i);
    p += sprintf(p, "],\"rates\":{\"not\":\"an array\"},\"wf_paused\":[1,\"a\"");
    for (int i = 0; i < 40; i++)
        p += sprintf(p, ",\"w%d\"", i);
    sprintf(p, "]}}");
    cr_assert_eq(qt_ctl_frame_from_json(big, strlen(big), &g), QT_OK);
    cr_assert_eq(g.has_fleet, 1);
    cr_assert_eq(g.fleet.up, 0, "a string is not a number");
    cr_assert_eq(g.fleet.n_procs, QT_BACKEND_MAX_PROCS, "processes capped at %d, got %d", QT_BACKEND_MAX_PROCS,
                 g.fleet.n_procs);
    cr_assert_eq(strlen(g.fleet.procs[0].host), sizeof g.fleet.procs[0].host - 1, "host cut to its buffer");
    cr_assert_eq(g.fleet.procs[5].pid, 5);
    cr_assert_eq(g.fleet.n_rates, 0);
    cr_assert_eq(g.fleet.n_wf_paused, QT_BACKEND_MAX_VIEW, "paused workflows capped");
    cr_assert_str_eq(g.fleet.wf_paused[0], "a", "a number is not a workflow name");
    qt_ctl_frame_free(&g);
    free(big);
}

Test(ctl, commands_and_details_survive_json)
{
    qt_ctl_cmd c = { .op = QT_CTL_SET_LIMIT, .flag = 1, .which = 't', .value = 40000 }, d;
    snprintf(c.name, sizeof c.name, "openai");
    char *js = qt_ctl_cmd_to_json(&c);
    cr_assert_eq(qt_ctl_cmd_from_json(js, strlen(js), &d), QT_OK);
    cr_assert_eq(d.op, QT_CTL_SET_LIMIT);
    cr_assert_str_eq(d.name, "openai");
    cr_assert_eq(d.flag, 1);
    cr_assert_eq(d.which, 't');
    cr_assert_float_eq(d.value, 40000, 1e-9);
    free(js);
    cr_assert_neq(qt_ctl_cmd_from_json("{\"op\":77}", 9, &d), QT_OK, "an unknown op is refused");

    qt_job_detail *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    snprintf(a->job.id, sizeof a->job.id, "job-7");
    a->n_chain = 2;
    snprintf(a->chain[0], sizeof a->chain[0], "gpt-4o");
    snprintf(a->chain[1], sizeof a->chain[1], "@cache");
    a->n_attempts = 1;
    a->attempts[0].status = 429;
    a->attempts[0].retry_after_ms = 2000;
    snprintf(a->attempts[0].error, sizeof a->attempts[0].error, "rate limited");
    a->n_waits = 1;
    snprintf(a->waits[0], sizeof a->waits[0], "wait-key model:gpt-4o 1200ms");
    js = qt_ctl_detail_to_json(a);
    cr_assert_eq(qt_ctl_detail_from_json(js, strlen(js), b), QT_OK);
    cr_assert_str_eq(b->job.id, "job-7");
    cr_assert_eq(b->n_chain, 2);
    cr_assert_str_eq(b->chain[1], "@cache");
    cr_assert_eq(b->attempts[0].status, 429);
    cr_assert_eq(b->attempts[0].retry_after_ms, 2000);
    cr_assert_str_eq(b->attempts[0].error, "rate limited");
    cr_assert_str_eq(b->waits[0], "wait-key model:gpt-4o 1200ms");
    free(js);
    free(a);
    free(b);
}

Test(ctl, socket_path_is_named_after_mode_and_pid)
{
    char p[256];
    cr_assert_eq(qt_ctl_socket_path("/tmp/qt-state", "serve", p, sizeof p), QT_OK);
    char want[128];
    snprintf(want, sizeof want, "/tmp/qt-state/serve-%ld.sock", (long)getpid());
    cr_assert_str_eq(p, want);
    cr_assert_neq(qt_ctl_socket_path("", "run", p, sizeof p), QT_OK, "no state_dir, no socket");
    char longdir[300];
    memset(longdir, 'd', sizeof longdir - 1);
    longdir[0] = '/';
    longdir[sizeof longdir - 1] = '\0';
    cr_assert_neq(qt_ctl_socket_path(longdir, "run", p, sizeof p), QT_OK, "too long for sun_path");
}

Test(ctl, list_filter_terms)
{
    const char *k[] = { "id", "state", "workflow", "model" };
    const char *v[] = { "job-12", "wait-key", "nightly", "gpt-4o-mini" };
    cr_assert(qt_ui_filter_match("", k, v, 4));
    cr_assert(qt_ui_filter_match("night", k, v, 4), "a word matches any field");
    cr_assert(qt_ui_filter_match("NIGHT", k, v, 4), "case-insensitive");
    cr_assert(qt_ui_filter_match("wf:nightly", k, v, 4), "wf names workflow");
    cr_assert(qt_ui_filter_match("workflow:night state:wait", k, v, 4), "all terms must match");
    cr_assert(!qt_ui_filter_match("workflow:night state:queued", k, v, 4));
    cr_assert(!qt_ui_filter_match("model:nightly", k, v, 4), "a keyed term looks at its field only");
    cr_assert(qt_ui_filter_match("mod:mini", k, v, 4), "a key prefix names the field");
    cr_assert(!qt_ui_filter_match("zzz", k, v, 4));
}
