/* test_events.c: Criterion suite "events".
 *
 * Ring wraparound, newest-N reads, since-seq reads (with the drop count when
 * the reader fell behind), per-type counts, the helpers' truncation, and a
 * threads_* test where writers race readers (for `make tsan`).
 */
#include "quotatop/events.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static uint64_t add_info(qt_events *e, int i)
{
    return qt_events_addf(e, QT_EV_INFO, (uint64_t)i, 1700000000000ULL + (uint64_t)i,
                          NULL, NULL, NULL, "event %d", i);
}

Test(events, empty_ring)
{
    qt_events *e = qt_events_new(8);
    qt_event out[4];
    cr_assert_eq(qt_events_latest(e, out, 4), 0);
    uint64_t dropped = 99;
    cr_assert_eq(qt_events_since(e, 0, out, 4, &dropped), 0);
    cr_assert_eq(dropped, 0);
    cr_assert_eq(qt_events_last_seq(e), 0);
    cr_assert_eq(qt_events_capacity(e), 8);
    qt_events_free(e);
    qt_events_free(NULL);
}

Test(events, seq_and_latest_before_wrap)
{
    qt_events *e = qt_events_new(8);
    for (int i = 1; i <= 5; i++)
        cr_assert_eq(add_info(e, i), (uint64_t)i);
    qt_event out[8];
    size_t k = qt_events_latest(e, out, 3);
    cr_assert_eq(k, 3);
    cr_assert_eq(out[0].seq, 3);
    cr_assert_eq(out[2].seq, 5);
    cr_assert_str_eq(out[2].msg, "event 5");
    cr_assert_eq(out[2].mono_ms, 5);
    cr_assert_eq(out[2].wall_ms, 1700000000005ULL);
    cr_assert_eq(qt_events_latest(e, out, 8), 5);
    cr_assert_eq(out[0].seq, 1);
    qt_events_free(e);
}

Test(events, wraparound_drops_oldest)
{
    qt_events *e = qt_events_new(8);
    for (int i = 1; i <= 21; i++)
        add_info(e, i);
    qt_event out[16];
    size_t k = qt_events_latest(e, out, 16);
    cr_assert_eq(k, 8, "only capacity events are held");
    for (size_t i = 0; i < k; i++) {
        cr_assert_eq(out[i].seq, 14 + i);
        char want[32];
        snprintf(want, sizeof want, "event %zu", 14 + i);
        cr_assert_str_eq(out[i].msg, want);
    }
    cr_assert_eq(qt_events_last_seq(e), 21);
    qt_events_free(e);
}

Test(events, since_seq_reads_on)
{
    qt_events *e = qt_events_new(8);
    for (int i = 1; i <= 6; i++)
        add_info(e, i);
    qt_event out[8];
    uint64_t dropped;
    size_t k = qt_events_since(e, 0, out, 4, &dropped);
    cr_assert_eq(k, 4);
    cr_assert_eq(dropped, 0);
    cr_assert_eq(out[0].seq, 1);
    uint64_t last = out[k - 1].seq;
    k = qt_events_since(e, last, out, 8, &dropped);
    cr_assert_eq(k, 2);
    cr_assert_eq(out[0].seq, 5);
    cr_assert_eq(out[1].seq, 6);
    cr_assert_eq(qt_events_since(e, 6, out, 8, &dropped), 0, "nothing new");
    /* across the wrap point */
    for (int i = 7; i <= 12; i++)
        add_info(e, i);
    k = qt_events_since(e, 6, out, 8, &dropped);
    cr_assert_eq(k, 6);
    cr_assert_eq(dropped, 0);
    for (size_t i = 0; i < k; i++)
        cr_assert_eq(out[i].seq, 7 + i);
    qt_events_free(e);
}

Test(events, since_seq_reports_overflow)
{
    qt_events *e = qt_events_new(4);
    for (int i = 1; i <= 10; i++)
        add_info(e, i);
    qt_event out[8];
    uint64_t dropped;
    /* the reader saw up to 2; 3..6 were overwritten */
    size_t k = qt_events_since(e, 2, out, 8, &dropped);
    cr_assert_eq(dropped, 4);
    cr_assert_eq(k, 4);
    cr_assert_eq(out[0].seq, 7);
    cr_assert_eq(out[3].seq, 10);
    qt_events_free(e);
}

Test(events, typed_fields_and_counts)
{
    qt_events *e = qt_events_new(16);
    qt_event ev;
    qt_event_init(&ev, QT_EV_FALLBACK, 10, 20);
    qt_event_subject(&ev, "gpt-4o", "openai", "support", "job-1");
    qt_event_transition(&ev, "gpt-4o", "gpt-4o-mini", "rate limited 3 times");
    qt_event_msgf(&ev, "%s -> %s", ev.from, ev.to);
    ev.seq = 999; /* ignored */
    cr_assert_eq(qt_events_add(e, &ev), 1);
    qt_event_init(&ev, QT_EV_RETRY, 11, 21);
    ev.wait_ms = 2500;
    ev.http_status = 429;
    ev.attempt = 2;
    qt_events_add(e, &ev);
    qt_events_add(e, &ev);
    ev.type = QT_EV__COUNT;
    cr_assert_eq(qt_events_add(e, &ev), 0, "bad type refused");
    qt_event out[4];
    cr_assert_eq(qt_events_latest(e, out, 4), 3);
    cr_assert_eq(out[0].type, QT_EV_FALLBACK);
    cr_assert_str_eq(out[0].model, "gpt-4o");
    cr_assert_str_eq(out[0].provider, "openai");
    cr_assert_str_eq(out[0].workflow, "support");
    cr_assert_str_eq(out[0].job_id, "job-1");
    cr_assert_str_eq(out[0].to, "gpt-4o-mini");
    cr_assert_str_eq(out[0].reason, "rate limited 3 times");
    cr_assert_str_eq(out[0].msg, "gpt-4o -> gpt-4o-mini");
    cr_assert_eq(out[0].seq, 1);
    cr_assert_eq(out[1].wait_ms, 2500);
    uint64_t c[QT_EV__COUNT];
    qt_events_counts(e, c);
    cr_assert_eq(c[QT_EV_FALLBACK], 1);
    cr_assert_eq(c[QT_EV_RETRY], 2);
    cr_assert_eq(c[QT_EV_INFO], 0);
    cr_assert_str_eq(qt_event_type_name(QT_EV_RATE_LIMITED), "rate_limited");
    cr_assert_str_eq(qt_event_type_name(QT_EV__COUNT), "unknown");
    qt_events_free(e);
}

Test(events, strings_truncate)
{
    qt_event ev;
    char big[300];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    qt_event_init(&ev, QT_EV_INFO, 0, 0);
    qt_event_subject(&ev, big, NULL, NULL, big);
    qt_event_transition(&ev, NULL, NULL, big);
    qt_event_msgf(&ev, "%s", big);
    cr_assert_eq(strlen(ev.model), QT_EVENT_SUBJECT_LEN - 1);
    cr_assert_eq(strlen(ev.job_id), QT_EVENT_SUBJECT_LEN - 1);
    cr_assert_eq(strlen(ev.reason), QT_EVENT_REASON_LEN - 1);
    cr_assert_eq(strlen(ev.msg), QT_EVENT_MSG_LEN - 1);
    cr_assert_str_eq(ev.provider, "");
}

enum { WRITERS = 4, PER_WRITER = 20000, READERS = 2 };

typedef struct {
    qt_events *e;
    pthread_barrier_t *bar;
    int id;
    uint64_t seen, dropped, bad;
} ev_arg;

static void *ev_writer(void *a)
{
    ev_arg *w = a;
    pthread_barrier_wait(w->bar);
    for (int i = 0; i < PER_WRITER; i++) {
        qt_event ev;
        qt_event_init(&ev, (i & 1) ? QT_EV_RETRY : QT_EV_RATE_LIMITED, (uint64_t)i, 0);
        ev.attempt = w->id;
        ev.wait_ms = (uint64_t)i;
        qt_event_msgf(&ev, "w%d i%d", w->id, i);
        if (qt_events_add(w->e, &ev) == 0)
            w->bad++;
    }
    return NULL;
}

static void *ev_reader(void *a)
{
    ev_arg *r = a;
    qt_event buf[64];
    uint64_t since = 0;
    const uint64_t total = (uint64_t)WRITERS * PER_WRITER;
    pthread_barrier_wait(r->bar);
    /* read on until every event has been seen or reported dropped */
    while (since < total) {
        uint64_t dropped;
        size_t k = qt_events_since(r->e, since, buf, 64, &dropped);
        r->dropped += dropped;
        for (size_t i = 0; i < k; i++) {
            /* contiguous, increasing seqs; each message matches its fields */
            uint64_t want = since + dropped + i + 1;
            if (buf[i].seq != want)
                r->bad++;
            char msg[QT_EVENT_MSG_LEN];
            snprintf(msg, sizeof msg, "w%d i%d", buf[i].attempt, (int)buf[i].wait_ms);
            if (strcmp(msg, buf[i].msg) != 0)
                r->bad++;
        }
        r->seen += k;
        if (k > 0)
            since = buf[k - 1].seq;
        qt_event latest[8];
        qt_events_latest(r->e, latest, 8);
    }
    return NULL;
}

Test(events, threads_writers_race_readers, .timeout = 20)
{
    qt_events *e = qt_events_new(256);
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, WRITERS + READERS);
    ev_arg args[WRITERS + READERS];
    pthread_t t[WRITERS + READERS];
    for (int i = 0; i < WRITERS + READERS; i++) {
        args[i] = (ev_arg){.e = e, .bar = &bar, .id = i};
        pthread_create(&t[i], NULL, i < WRITERS ? ev_writer : ev_reader, &args[i]);
    }
    for (int i = 0; i < WRITERS + READERS; i++)
        pthread_join(t[i], NULL);
    const uint64_t total = (uint64_t)WRITERS * PER_WRITER;
    for (int i = 0; i < WRITERS + READERS; i++)
        cr_assert_eq(args[i].bad, 0, "thread %d saw a torn or out-of-order event", i);
    for (int i = WRITERS; i < WRITERS + READERS; i++)
        cr_assert_eq(args[i].seen + args[i].dropped, total,
                     "reader %d: seen %lu + dropped %lu", i,
                     (unsigned long)args[i].seen, (unsigned long)args[i].dropped);
    cr_assert_eq(qt_events_last_seq(e), total);
    uint64_t c[QT_EV__COUNT];
    qt_events_counts(e, c);
    cr_assert_eq(c[QT_EV_RETRY], total / 2);
    cr_assert_eq(c[QT_EV_RATE_LIMITED], total / 2);
    pthread_barrier_destroy(&bar);
    qt_events_free(e);
}
