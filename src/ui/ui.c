/* ui.c: the dashboard's main loop and its terminal.
 *
 * DESIGN
 * One thread (the caller's). Each frame (every refresh_ms, 250 by default,
 * or at once after a key that changed something) it takes copies from the
 * engine: a snapshot, the head of the queue, the queue counts and the newest
 * events; each call locks the engine only to copy. Then every panel window
 * is erased and redrawn with wnoutrefresh and the frame ends with a single
 * doupdate(). Between frames it waits in getch() with timeout() set to the
 * time left until the next frame, so an idle dashboard wakes about four
 * times a second and costs little CPU.
 *
 * Exit paths and the terminal: q (confirmed when work is pending), the
 * deadline (demo --duration), a SIGINT/SIGTERM (the caller's handlers only
 * count; the loop asks opts.should_stop() once per wake-up, so it sees a
 * signal within one frame), or an allocation failure: each one leaves the loop and
 * restores the terminal with endwin() before returning. If the process
 * exits while the dashboard is up (exit() from anywhere), an atexit hook
 * restores it too. KEY_RESIZE (ncurses' own SIGWINCH handling) recomputes
 * the layout and recreates the windows.
 */
#include "ui_int.h"

#include <langinfo.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "quotatop/clock.h"

static SCREEN *active_screen;   /* non-NULL while curses owns the terminal */

static void restore_at_exit(void)
{
    if (active_screen && !isendwin())
        endwin();
}

static void free_windows(ui_state *ui)
{
    for (int p = 0; p < QT_PANEL__COUNT; p++) {
        if (ui->win[p])
            delwin(ui->win[p]);
        ui->win[p] = NULL;
    }
}

static void relayout(ui_state *ui)
{
    getmaxyx(stdscr, ui->rows, ui->cols);
    qt_ui_layout_in in = { (int)ui->snap.n_rows, (int)ui->snap.n_workflows, (int)ui->nqueue };
    qt_ui_layout_compute(ui->cols, ui->rows, &in, &ui->lay);
    free_windows(ui);
    werase(stdscr);
    wnoutrefresh(stdscr);   /* stdscr is untouched afterwards: getch() will not repaint it */
    if (ui->lay.too_small)
        return;
    for (int p = 0; p < QT_PANEL__COUNT; p++) {
        const qt_ui_rect *r = &ui->lay.r[p];
        if (r->h > 0 && r->w > 0)
            ui->win[p] = newwin(r->h, r->w, r->y, r->x);
    }
}

/* Keeps the selections valid after new copies; the queue cursor stays on
 * the job it was on when that job is still queued. */
static void fix_selections(ui_state *ui)
{
    if (ui->sel_job[0]) {
        int found = -1;
        for (size_t i = 0; i < ui->nqueue && found < 0; i++)
            if (!strcmp(ui->queue[i].id, ui->sel_job))
                found = (int)i;
        if (found >= 0)
            ui->sel[FOCUS_QUEUE] = found;
    }
    int n[FOCUS__COUNT] = { (int)ui->snap.n_rows, (int)ui->nqueue, (int)ui->snap.n_workflows };
    for (int f = 0; f < FOCUS__COUNT; f++) {
        if (ui->sel[f] >= n[f])
            ui->sel[f] = n[f] - 1;
        if (ui->sel[f] < 0)
            ui->sel[f] = 0;
    }
    if (ui->nqueue)
        snprintf(ui->sel_job, sizeof ui->sel_job, "%s", ui->queue[ui->sel[FOCUS_QUEUE]].id);
    else
        ui->sel_job[0] = '\0';
}

/* Takes the frame's copies. Returns -1 when out of memory (nothing changed). */
static int take_copies(ui_state *ui)
{
    qt_engine_snapshot s;
    if (qt_engine_snapshot_take(ui->e, &s) != QT_OK)
        return -1;
    size_t old_rows = ui->snap.n_rows;
    if (ui->have_snap)
        qt_engine_snapshot_free(&ui->snap);
    ui->snap = s;
    ui->have_snap = 1;
    ui->nqueue = qt_engine_queue_head(ui->e, ui->queue, UI_MAX_QUEUE);
    qt_engine_queue_counts(ui->e, &ui->qcounts);
    ui->nevents = qt_events_latest(qt_engine_events(ui->e), ui->events, UI_MAX_EVENTS);
    ui->finished = ui->opts.mode && !strcmp(ui->opts.mode, "run") && qt_engine_wait_done(ui->e, 0);
    uint64_t now = qt_now_ms();
    int newest = (ui->rate_head + UI_RATE_SAMPLES - 1) % UI_RATE_SAMPLES;
    /* one sample every ~250 ms: the ring spans ~15 s */
    if (ui->rate_n == 0 || now - ui->rate_t[newest] >= 240) {
        ui->rate_t[ui->rate_head] = now;
        ui->rate_done[ui->rate_head] = s.done;
        ui->rate_head = (ui->rate_head + 1) % UI_RATE_SAMPLES;
        if (ui->rate_n < UI_RATE_SAMPLES)
            ui->rate_n++;
    }
    fix_selections(ui);
    if (old_rows != s.n_rows)
        relayout(ui);
    return 0;
}

static int setup_terminal(ui_state *ui)
{
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
        return -1;
    const char *term = getenv("TERM");
    if (!term || !*term || !strcmp(term, "dumb"))
        return -1;
    /* LC_CTYPE only: wide characters for ncursesw without changing how
     * numbers are printed elsewhere (results, summaries stay with '.'). */
    setlocale(LC_CTYPE, "");
    ui->utf8 = !strcmp(nl_langinfo(CODESET), "UTF-8");
    SCREEN *scr = newterm(NULL, stdout, stdin);   /* unlike initscr, returns NULL on failure */
    if (!scr)
        return -1;
    set_term(scr);
    active_screen = scr;
    static int hooked;
    if (!hooked) {
        atexit(restore_at_exit);
        hooked = 1;
    }
    cbreak();   /* not raw(): Ctrl-C still raises SIGINT, which the handlers count */
    noecho();
    keypad(stdscr, TRUE);
    curs_set(0);
    set_escdelay(25);
    ui_colors_init(ui);
    return 0;
}

static void teardown_terminal(ui_state *ui)
{
    free_windows(ui);
    if (active_screen) {
        endwin();
        delscreen(active_screen);
        active_screen = NULL;
    }
}

qt_ui_exit qt_ui_run_opts(qt_engine *e, const qt_ui_opts *opts)
{
    ui_state *ui = calloc(1, sizeof *ui);
    if (!ui)
        return QT_UI_EXIT_ERROR;
    ui->queue = calloc(UI_MAX_QUEUE, sizeof *ui->queue);
    if (!ui->queue) {
        free(ui);
        return QT_UI_EXIT_ERROR;
    }
    ui->e = e;
    ui->opts = *opts;
    if (!ui->opts.t0_ms)
        ui->opts.t0_ms = qt_now_ms();
    int period = ui->opts.refresh_ms > 0 ? ui->opts.refresh_ms : 250;
    ssize_t n = readlink("/proc/self/exe", ui->exe_dir, sizeof ui->exe_dir - 1);
    if (n > 0) {
        ui->exe_dir[n] = '\0';
        char *slash = strrchr(ui->exe_dir, '/');
        if (slash)
            *slash = '\0';
    } else {
        ui->exe_dir[0] = '\0';
    }
    if (setup_terminal(ui)) {
        free(ui->queue);
        free(ui);
        return QT_UI_EXIT_NO_TERMINAL;
    }

    const char *tname = ui->opts.theme;
    if (!tname || !*tname)
        tname = getenv("QUOTATOP_THEME");
    if (!tname || !*tname)
        tname = "default";
    ui->theme_idx = -1;
    for (int i = 0; i < QT_THEME_CYCLE_LEN; i++)
        if (!strcmp(tname, qt_theme_cycle[i]))
            ui->theme_idx = i;
    char theme_err[700];
    if (ui_theme_select(ui, tname, theme_err, sizeof theme_err)) {
        ui_status(ui, "%s", theme_err);
        ui->status_until = qt_now_ms() + 15000;
        if (ui->theme_idx < 0)
            ui->theme_idx = 0;
    } else {
        theme_err[0] = '\0';
    }

    ui->exit = QT_UI_EXIT_QUIT;
    if (take_copies(ui))
        ui->exit = QT_UI_EXIT_ERROR;
    relayout(ui);
    uint64_t next_frame = 0;
    int dirty = 1;
    while (ui->exit != QT_UI_EXIT_ERROR) {
        if (ui->opts.should_stop && ui->opts.should_stop()) {
            ui->exit = QT_UI_EXIT_SIGNAL;
            break;
        }
        uint64_t now = qt_now_ms();
        if (ui->opts.deadline_ms && now >= ui->opts.deadline_ms) {
            ui->exit = QT_UI_EXIT_DEADLINE;
            break;
        }
        if (now >= next_frame) {
            if (take_copies(ui)) {
                ui->exit = QT_UI_EXIT_ERROR;
                break;
            }
            next_frame = now + (uint64_t)period;
            dirty = 1;
        }
        if (ui->status[0] && !ui->status_until)
            ui->status_until = now + 4000;
        if (ui->status[0] && now >= ui->status_until) {
            ui->status[0] = '\0';
            dirty = 1;
        }
        if (dirty) {
            ui_draw_all(ui);
            dirty = 0;
        }
        if (ui->finished && !ui->opts.stay) {
            ui->exit = QT_UI_EXIT_DONE;   /* batch users expect `run` to end with its jobs */
            break;
        }
        now = qt_now_ms();
        int64_t wait = next_frame > now ? (int64_t)(next_frame - now) : 0;
        if (ui->opts.deadline_ms && ui->opts.deadline_ms > now
            && (int64_t)(ui->opts.deadline_ms - now) < wait)
            wait = (int64_t)(ui->opts.deadline_ms - now);
        timeout((int)(wait < 1 ? 1 : wait));
        int ch = getch();
        if (ch == ERR)
            continue;
        if (ch == KEY_RESIZE) {
            relayout(ui);
            dirty = 1;
            continue;
        }
        int flags = ui_key(ui, ch);
        if (flags & UI_QUIT)
            break;
        if (flags & UI_RETHEME)
            clearok(curscr, TRUE);
        if ((flags & UI_RESNAP) && take_copies(ui)) {
            ui->exit = QT_UI_EXIT_ERROR;
            break;
        }
        if (flags)
            dirty = 1;
    }
    qt_ui_exit why = ui->exit;
    teardown_terminal(ui);
    if (theme_err[0])
        fprintf(stderr, "quotatop: %s\n", theme_err);
    if (why == QT_UI_EXIT_ERROR)
        fprintf(stderr, "quotatop: the dashboard ran out of memory; continuing without it\n");
    if (ui->have_snap)
        qt_engine_snapshot_free(&ui->snap);
    free(ui->queue);
    free(ui);
    return why;
}

int qt_ui_run(qt_engine *e, const char *mode, uint64_t t0_ms, int (*should_stop)(void))
{
    qt_ui_opts o = { .mode = mode, .t0_ms = t0_ms, .should_stop = should_stop };
    return qt_ui_run_opts(e, &o) == QT_UI_EXIT_NO_TERMINAL ? -1 : 0;
}
