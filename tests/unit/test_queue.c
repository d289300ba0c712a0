/* test_queue.c: Criterion suite "queue".
 *
 * Ordering (priority, FIFO, aging at the documented moment), cancel,
 * reprioritize, pause (all / per workflow), close, drain, counts, snapshot =
 * pop order (checked against a brute-force model on random operations),
 * pop_first with a filter. The queue is pure: its owner (the engine)
 * serialises calls under its own lock.
 */
#include "quotatop/queue.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void push(qt_queue *q, const char *id, const char *wf, int prio, uint64_t now)
{
    qt_queue_job j = {.id = id, .workflow = wf, .priority = prio, .payload = (void *)id};
    cr_assert_eq(qt_queue_push(q, &j, now), QT_OK, "push %s", id);
}

static const char *pop_id(qt_queue *q)
{
    static char buf[QT_QUEUE_ID_LEN];
    void *p = NULL;
    qt_queue_view v;
    qt_err e = qt_queue_pop(q, &p, &v);
    if (e != QT_OK)
        return NULL;
    cr_assert_str_eq(v.id, (const char *)p, "view id matches payload");
    snprintf(buf, sizeof buf, "%s", v.id);
    return buf;
}

static void expect_order(qt_queue *q, const char *const *ids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *got = pop_id(q);
        cr_assert_not_null(got, "pop %zu: expected %s, got nothing", i, ids[i]);
        cr_assert_str_eq(got, ids[i], "pop %zu", i);
    }
}

Test(queue, priority_order)
{
    qt_queue *q = qt_queue_new(0);
    push(q, "p5", NULL, 5, 0);
    push(q, "p10", NULL, 10, 1);
    push(q, "p1", NULL, 1, 2);
    push(q, "p3", NULL, 3, 3);
    const char *want[] = {"p1", "p3", "p5", "p10"};
    expect_order(q, want, 4);
    cr_assert_eq(qt_queue_pop(q, NULL, NULL), QT_ERR_NOTFOUND);
    qt_queue_free(q);
}

Test(queue, fifo_within_priority)
{
    qt_queue *q = qt_queue_new(30000);
    char id[16];
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof id, "j%03d", i);
        push(q, id, i % 2 ? "a" : "b", 4, 1000); /* same time: seq decides */
    }
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof id, "j%03d", i);
        cr_assert_str_eq(pop_id(q), id);
    }
    qt_queue_free(q);
}

Test(queue, fifo_survives_lagging_now)
{
    /* a pusher whose now_ms lags must not jump ahead of earlier pushes */
    qt_queue *q = qt_queue_new(1000);
    push(q, "first", NULL, 5, 5000);
    push(q, "second", NULL, 5, 4000);
    const char *want[] = {"first", "second"};
    expect_order(q, want, 2);
    qt_queue_free(q);
}

Test(queue, aging_overtakes_at_documented_time)
{
    const uint64_t ag = 1000, t0 = 50000;
    qt_queue *q = qt_queue_new(ag);
    push(q, "old10", NULL, 10, t0);
    /* a priority-1 job pushed 1 ms before 9*aging_ms still goes first */
    push(q, "early1", NULL, 1, t0 + 9 * ag - 1);
    /* pushed exactly at t0 + 9*aging_ms: old10 has aged to level 1 and wins by FIFO */
    push(q, "late1", NULL, 1, t0 + 9 * ag);
    push(q, "later1", NULL, 1, t0 + 9 * ag + 500);
    const char *want[] = {"early1", "old10", "late1", "later1"};
    expect_order(q, want, 4);
    qt_queue_free(q);
}

Test(queue, aging_one_level_per_interval)
{
    const uint64_t ag = 30000;
    qt_queue *q = qt_queue_new(ag);
    push(q, "p7", NULL, 7, 0);
    /* after 2 intervals p7 ranks like a fresh p5: ahead of fresh p5 and p6, behind fresh p4 */
    push(q, "p4", NULL, 4, 2 * ag);
    push(q, "p5", NULL, 5, 2 * ag);
    push(q, "p6", NULL, 6, 2 * ag);
    const char *want[] = {"p4", "p7", "p5", "p6"};
    expect_order(q, want, 4);
    cr_assert_eq(qt_queue_effective_priority(ag, 7, 0, 2 * ag - 1), 6);
    cr_assert_eq(qt_queue_effective_priority(ag, 7, 0, 2 * ag), 5);
    cr_assert_eq(qt_queue_effective_priority(ag, 7, 0, 100 * ag), 1);
    cr_assert_eq(qt_queue_effective_priority(0, 7, 0, 100 * ag), 7);
    qt_queue_free(q);
}

Test(queue, aging_off_never_overtakes)
{
    qt_queue *q = qt_queue_new(0);
    push(q, "old10", NULL, 10, 0);
    push(q, "new9", NULL, 9, 1000000000);
    const char *want[] = {"new9", "old10"};
    expect_order(q, want, 2);
    qt_queue_free(q);
}

Test(queue, cancel_returns_payload)
{
    qt_queue *q = qt_queue_new(1000);
    push(q, "a", NULL, 3, 0);
    push(q, "b", NULL, 3, 1);
    push(q, "c-with-a-long-identifier-over-16", "w", 3, 2);
    void *p = NULL;
    cr_assert_eq(qt_queue_cancel(q, "b", &p), QT_OK);
    cr_assert_str_eq((const char *)p, "b");
    cr_assert_eq(qt_queue_cancel(q, "b", &p), QT_ERR_NOTFOUND);
    cr_assert_eq(qt_queue_cancel(q, "c-with-a-long-identifier-over-16", NULL), QT_OK);
    qt_queue_counts c;
    qt_queue_counts_get(q, &c);
    cr_assert_eq(c.total, 1);
    cr_assert_eq(c.by_priority[2], 1);
    const char *want[] = {"a"};
    expect_order(q, want, 1);
    /* the id can be reused once gone */
    push(q, "b", NULL, 1, 5);
    cr_assert_str_eq(pop_id(q), "b");
    qt_queue_free(q);
}

Test(queue, duplicate_id_and_bad_priority_refused)
{
    qt_queue *q = qt_queue_new(0);
    push(q, "x", NULL, 5, 0);
    qt_queue_job j = {.id = "x", .priority = 5};
    cr_assert_eq(qt_queue_push(q, &j, 0), QT_ERR_INVALID);
    j.id = "y";
    j.priority = 0;
    cr_assert_eq(qt_queue_push(q, &j, 0), QT_ERR_INVALID);
    j.priority = 11;
    cr_assert_eq(qt_queue_push(q, &j, 0), QT_ERR_INVALID);
    j.priority = 5;
    j.id = "";
    cr_assert_eq(qt_queue_push(q, &j, 0), QT_ERR_INVALID);
    qt_queue_counts c;
    qt_queue_counts_get(q, &c);
    cr_assert_eq(c.total, 1);
    qt_queue_free(q);
}

Test(queue, reprioritize_moves_entry)
{
    qt_queue *q = qt_queue_new(0);
    push(q, "a", NULL, 5, 0);
    push(q, "b", NULL, 5, 0);
    push(q, "c", NULL, 5, 0);
    push(q, "d", NULL, 2, 0);
    cr_assert_eq(qt_queue_reprioritize(q, "c", 1), QT_OK);
    cr_assert_eq(qt_queue_reprioritize(q, "d", 9), QT_OK);
    cr_assert_eq(qt_queue_priority_of(q, "c"), 1);
    cr_assert_eq(qt_queue_reprioritize(q, "zz", 1), QT_ERR_NOTFOUND);
    cr_assert_eq(qt_queue_reprioritize(q, "a", 0), QT_ERR_INVALID);
    qt_queue_counts c;
    qt_queue_counts_get(q, &c);
    cr_assert_eq(c.by_priority[0], 1);
    cr_assert_eq(c.by_priority[4], 2);
    cr_assert_eq(c.by_priority[8], 1);
    cr_assert_eq(c.by_priority[1], 0);
    const char *want[] = {"c", "a", "b", "d"};
    expect_order(q, want, 4);
    qt_queue_free(q);
}

Test(queue, reprioritize_keeps_fifo_place)
{
    qt_queue *q = qt_queue_new(0);
    push(q, "x", NULL, 5, 0);
    push(q, "y", NULL, 3, 0);
    push(q, "z", NULL, 3, 0);
    cr_assert_eq(qt_queue_reprioritize(q, "x", 3), QT_OK); /* oldest of the 3s now */
    const char *want[] = {"x", "y", "z"};
    expect_order(q, want, 3);
    qt_queue_free(q);
}

Test(queue, pause_all)
{
    qt_queue *q = qt_queue_new(0);
    push(q, "a", NULL, 1, 0);
    qt_queue_pause_all(q);
    cr_assert_eq(qt_queue_pop(q, NULL, NULL), QT_ERR_NOTFOUND);
    push(q, "b", NULL, 1, 0); /* push still works */
    qt_queue_counts c;
    qt_queue_counts_get(q, &c);
    cr_assert_eq(c.paused_all, 1);
    cr_assert_eq(c.total, 2);
    qt_queue_resume_all(q);
    const char *want[] = {"a", "b"};
    expect_order(q, want, 2);
    qt_queue_free(q);
}

Test(queue, pause_one_workflow_others_flow)
{
    qt_queue *q = qt_queue_new(0);
    push(q, "n1", "nightly", 1, 0);
    push(q, "s1", "support", 5, 0);
    push(q, "n2", "nightly", 2, 0);
    push(q, "s2", "support", 6, 0);
    cr_assert_eq(qt_queue_pause_workflow(q, "nightly"), QT_OK);
    cr_assert_eq(qt_queue_workflow_paused(q, "nightly"), 1);
    cr_assert_eq(qt_queue_workflow_paused(q, "support"), 0);
    push(q, "n3", "nightly", 1, 0); /* joins the paused backlog */
    qt_queue_counts c;
    qt_queue_counts_get(q, &c);
    cr_assert_eq(c.total, 5);
    cr_assert_eq(c.ready, 2);
    const char *want1[] = {"s1", "s2"};
    expect_order(q, want1, 2);
    cr_assert_eq(qt_queue_pop(q, NULL, NULL), QT_ERR_NOTFOUND);
    push(q, "s3", "support", 9, 0);
    cr_assert_eq(qt_queue_resume_workflow(q, "nightly"), QT_OK);
    const char *want2[] = {"n1", "n3", "n2", "s3"};
    expect_order(q, want2, 4);
    qt_queue_free(q);
}

Test(queue, pause_unknown_workflow_applies_to_future_jobs)
{
    qt_queue *q = qt_queue_new(0);
    cr_assert_eq(qt_queue_pause_workflow(q, "later"), QT_OK);
    push(q, "l1", "later", 1, 0);
    push(q, "o1", "other", 9, 0);
    cr_assert_str_eq(pop_id(q), "o1");
    cr_assert_null(pop_id(q));
    cr_assert_eq(qt_queue_resume_workflow(q, "nope"), QT_OK);
    qt_queue_resume_workflow(q, "later");
    cr_assert_str_eq(pop_id(q), "l1");
    qt_queue_free(q);
}

Test(queue, workflow_counts)
{
    qt_queue *q = qt_queue_new(0);
    push(q, "a", "w1", 1, 0);
    push(q, "b", "w2", 1, 0);
    push(q, "c", "w2", 1, 0);
    push(q, "d", NULL, 1, 0);
    qt_queue_pause_workflow(q, "w2");
    qt_queue_workflow_count wc[8];
    size_t n = qt_queue_workflow_counts(q, wc, 8);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(wc[0].name, "w1");
    cr_assert_eq(wc[0].count, 1);
    cr_assert_str_eq(wc[1].name, "w2");
    cr_assert_eq(wc[1].count, 2);
    cr_assert_eq(wc[1].paused, 1);
    cr_assert_str_eq(wc[2].name, "default");
    cr_assert_eq(wc[2].count, 1);
    qt_queue_free(q);
}

Test(queue, close_pops_leftovers_then_closed)
{
    qt_queue *q = qt_queue_new(0);
    push(q, "a", NULL, 1, 0);
    push(q, "p", "paused", 1, 0);
    qt_queue_pause_workflow(q, "paused");
    qt_queue_close(q);
    qt_queue_job j = {.id = "b", .priority = 1};
    cr_assert_eq(qt_queue_push(q, &j, 0), QT_ERR_CLOSED);
    cr_assert_str_eq(pop_id(q), "a");
    cr_assert_eq(qt_queue_pop(q, NULL, NULL), QT_ERR_CLOSED);
    void *pl[4];
    qt_queue_view v[4];
    cr_assert_eq(qt_queue_drain(q, pl, v, 4), 1);
    cr_assert_str_eq((const char *)pl[0], "p");
    cr_assert_str_eq(v[0].workflow, "paused");
    cr_assert_eq(qt_queue_drain(q, pl, v, 4), 0);
    qt_queue_free(q);
}

Test(queue, drain_everything)
{
    qt_queue *q = qt_queue_new(100);
    char ids[50][16];
    for (int i = 0; i < 50; i++) {
        snprintf(ids[i], sizeof ids[i], "d%d", i);
        qt_queue_job j = {.id = ids[i], .workflow = i % 3 ? "x" : "y",
                          .priority = 1 + i % 10, .payload = ids[i]};
        cr_assert_eq(qt_queue_push(q, &j, (uint64_t)i), QT_OK);
    }
    qt_queue_pause_workflow(q, "y");
    int seen[50] = {0};
    void *pl[7];
    size_t k, total = 0;
    while ((k = qt_queue_drain(q, pl, NULL, 7)) > 0) {
        for (size_t i = 0; i < k; i++)
            seen[atoi((const char *)pl[i] + 1)]++;
        total += k;
    }
    cr_assert_eq(total, 50);
    for (int i = 0; i < 50; i++)
        cr_assert_eq(seen[i], 1);
    qt_queue_counts c;
    qt_queue_counts_get(q, &c);
    cr_assert_eq(c.total, 0);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(c.by_priority[i], 0);
    qt_queue_free(q);
}

Test(queue, snapshot_order_equals_pop_order)
{
    /* random operations on several workflows; the snapshot must list exactly
     * the entries later popped, in the same order */
    qt_queue *q = qt_queue_new(700);
    srand(42);
    char ids[2000][16];
    int live = 0;
    uint64_t now = 0;
    for (int i = 0; i < 2000; i++) {
        snprintf(ids[i], sizeof ids[i], "r%d", i);
        char wf[16];
        snprintf(wf, sizeof wf, "w%d", rand() % 7);
        qt_queue_job j = {.id = ids[i], .workflow = wf, .priority = 1 + rand() % 10,
                          .payload = ids[i], .model = i % 2 ? "gpt-4o" : NULL};
        now += (uint64_t)(rand() % 300);
        cr_assert_eq(qt_queue_push(q, &j, now), QT_OK);
        live++;
        int r = rand() % 10;
        if (r == 0 && qt_queue_cancel(q, ids[rand() % (i + 1)], NULL) == QT_OK)
            live--;
        else if (r == 1)
            qt_queue_reprioritize(q, ids[rand() % (i + 1)], 1 + rand() % 10);
        else if (r == 2 && qt_queue_pop(q, NULL, NULL) == QT_OK)
            live--;
    }
    qt_queue_pause_workflow(q, "w3");
    size_t n3 = 0;
    qt_queue_workflow_count wc[16];
    size_t nw = qt_queue_workflow_counts(q, wc, 16);
    for (size_t w = 0; w < nw; w++)
        if (strcmp(wc[w].name, "w3") == 0)
            n3 = wc[w].count;
    qt_queue_view *snap = calloc((size_t)live, sizeof *snap);
    qt_queue_view *all = calloc((size_t)live, sizeof *all);
    size_t k = qt_queue_snapshot(q, now, 0, snap, (size_t)live);
    size_t kall = qt_queue_snapshot(q, now, 1, all, (size_t)live);
    cr_assert_eq(k, (size_t)live - n3);
    cr_assert_eq(kall, (size_t)live);
    /* the first 10 of a short snapshot equal the head of the long one */
    qt_queue_view head[10];
    cr_assert_eq(qt_queue_snapshot(q, now, 0, head, 10), 10);
    for (int i = 0; i < 10; i++)
        cr_assert_str_eq(head[i].id, snap[i].id);
    for (size_t i = 0; i < k; i++) {
        cr_assert_eq(snap[i].paused, 0);
        cr_assert(i == 0 || snap[i - 1].effective_priority <= snap[i].effective_priority,
                  "effective priority is monotone in pop order");
        cr_assert_str_eq(pop_id(q), snap[i].id, "pop %zu", i);
    }
    cr_assert_null(pop_id(q));
    /* resume w3: the remaining pops follow the include_paused order minus those already popped */
    qt_queue_resume_workflow(q, "w3");
    size_t j = 0;
    for (size_t i = 0; i < kall; i++) {
        if (!all[i].paused)
            continue;
        cr_assert_str_eq(all[i].workflow, "w3");
        cr_assert_str_eq(pop_id(q), all[i].id);
        j++;
    }
    cr_assert_eq(j, n3);
    cr_assert_null(pop_id(q));
    free(snap);
    free(all);
    qt_queue_free(q);
}

Test(queue, snapshot_fields)
{
    qt_queue *q = qt_queue_new(1000);
    qt_queue_job j = {.id = "s1", .workflow = "wf", .model = "claude-3-5-haiku",
                      .priority = 8, .est_tokens = 1234};
    cr_assert_eq(qt_queue_push(q, &j, 10000), QT_OK);
    qt_queue_view v;
    cr_assert_eq(qt_queue_snapshot(q, 13500, 0, &v, 1), 1);
    cr_assert_str_eq(v.id, "s1");
    cr_assert_str_eq(v.workflow, "wf");
    cr_assert_str_eq(v.model, "claude-3-5-haiku");
    cr_assert_eq(v.priority, 8);
    cr_assert_eq(v.effective_priority, 5);
    cr_assert_eq(v.enqueue_ms, 10000);
    cr_assert_eq(v.est_tokens, 1234);
    qt_queue_free(q);
}

Test(queue, large_random_against_model)
{
    /* many entries, one workflow paused half the time: pop order must be
     * sorted by (key, seq) among ready entries */
    qt_queue *q = qt_queue_new(50);
    srand(7);
    char (*ids)[16] = malloc(20000 * sizeof *ids);
    for (int i = 0; i < 20000; i++) {
        snprintf(ids[i], sizeof ids[i], "%d", i);
        qt_queue_job j = {.id = ids[i], .workflow = (i % 4) ? "bulk" : "live",
                          .priority = 1 + rand() % 10, .payload = ids[i]};
        cr_assert_eq(qt_queue_push(q, &j, (uint64_t)i), QT_OK);
    }
    qt_queue_pause_workflow(q, "bulk");
    uint64_t lastkey = 0;
    int popped = 0;
    qt_queue_view v;
    void *p;
    while (qt_queue_pop(q, &p, &v) == QT_OK) {
        cr_assert_str_eq(v.workflow, "live");
        uint64_t key = (uint64_t)v.priority * 50 + v.enqueue_ms;
        cr_assert_geq(key, lastkey);
        lastkey = key;
        popped++;
    }
    cr_assert_eq(popped, 5000);
    qt_queue_resume_workflow(q, "bulk");
    lastkey = 0;
    while (qt_queue_pop(q, &p, &v) == QT_OK) {
        uint64_t key = (uint64_t)v.priority * 50 + v.enqueue_ms;
        cr_assert_geq(key, lastkey);
        lastkey = key;
        popped++;
    }
    cr_assert_eq(popped, 20000);
    free(ids);
    qt_queue_free(q);
}


/* A scheduler's filter: accept jobs whose model is not "slow". */
static int not_slow(void *ud, const qt_queue_view *v)
{
    int *calls = ud;
    (*calls)++;
    return strcmp(v->model, "slow") != 0;
}

static void push_model(qt_queue *q, const char *id, const char *wf, const char *model, int prio,
                       uint64_t now)
{
    qt_queue_job j = { .id = id, .workflow = wf, .model = model, .priority = prio,
                       .payload = (void *)id };
    cr_assert_eq(qt_queue_push(q, &j, now), QT_OK);
}

Test(queue, pop_first_skips_what_the_filter_refuses)
{
    qt_queue *q = qt_queue_new(0);
    push_model(q, "s1", "w", "slow", 1, 0);
    push_model(q, "s2", "w", "slow", 1, 1);
    push_model(q, "f1", "w", "fast", 5, 2);
    push_model(q, "s3", "w", "slow", 1, 3);
    push_model(q, "f2", "w", "fast", 9, 4);
    void *p = NULL;
    qt_queue_view v;
    int calls = 0;
    cr_assert_eq(qt_queue_pop_first(q, 10, 16, not_slow, &calls, &p, &v), QT_OK);
    cr_assert_str_eq((const char *)p, "f1");
    cr_assert_str_eq(v.id, "f1");
    cr_assert_eq(calls, 4, "walked s1 s2 s3 then f1 in pop order, got %d calls", calls);
    /* A window too small to reach a fast job refuses without removing anything. */
    calls = 0;
    cr_assert_eq(qt_queue_pop_first(q, 10, 3, not_slow, &calls, &p, NULL), QT_ERR_LIMIT);
    cr_assert_eq(calls, 3);
    qt_queue_counts c;
    qt_queue_counts_get(q, &c);
    cr_assert_eq(c.total, 4);
    /* The refused jobs keep their place: plain pop still takes s1 first. */
    cr_assert_str_eq(pop_id(q), "s1");
    cr_assert_eq(qt_queue_pop_first(q, 10, 16, not_slow, &calls, &p, NULL), QT_OK);
    cr_assert_str_eq((const char *)p, "f2");
    qt_queue_free(q);
}

Test(queue, pop_first_honours_pauses_and_close)
{
    qt_queue *q = qt_queue_new(0);
    push_model(q, "a", "paused-wf", "fast", 1, 0);
    push_model(q, "b", "open-wf", "fast", 5, 1);
    cr_assert_eq(qt_queue_pause_workflow(q, "paused-wf"), QT_OK);
    void *p = NULL;
    int calls = 0;
    cr_assert_eq(qt_queue_pop_first(q, 5, 16, not_slow, &calls, &p, NULL), QT_OK);
    cr_assert_str_eq((const char *)p, "b", "a paused workflow's job was offered");
    qt_queue_pause_all(q);
    cr_assert_eq(qt_queue_pop_first(q, 5, 16, not_slow, &calls, &p, NULL), QT_ERR_NOTFOUND);
    qt_queue_resume_all(q);
    qt_queue_close(q);
    cr_assert_eq(qt_queue_pop_first(q, 5, 16, not_slow, &calls, &p, NULL), QT_ERR_CLOSED,
                 "only a paused workflow's job is left: closed and nothing ready");
    cr_assert_eq(qt_queue_pop_first(q, 5, 16, NULL, NULL, &p, NULL), QT_ERR_INVALID);
    void *left[4];
    cr_assert_eq(qt_queue_drain(q, left, NULL, 4), 1);
    qt_queue_free(q);
}
