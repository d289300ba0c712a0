/* ui.c: the dashboard's main loop, its terminal and the mouse.
 *
 * DESIGN
 * One thread (the caller's). Each frame (every refresh_ms, 250 by default,
 * or at once after a key that changed something) it takes a frame from its
 * source (qt_ctl_source: the local engine's control plane, or a remote
 * process for `quotatop top`): a snapshot, the job views, the queue
 * counts, the newest events and failures. Then every panel window
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
    qt_ui_layout_in in = { (int)ui->fr.snap.n_rows, (int)ui->fr.snap.n_workflows, (int)ui->fr.n_jobs };
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

/* Takes the frame. Returns -1 when out of memory or the remote process went
 * away (ui->gone says why); the previous frame stays. */
static int take_frame(ui_state *ui)
{
    qt_ctl_frame f;
    char err[200] = "";
    if (qt_ctl_source_frame(ui->src, &f, err, sizeof err) != QT_OK) {
        snprintf(ui->gone, sizeof ui->gone, "%s", err[0] ? err : "no frame");
        return -1;
    }
    size_t old_rows = ui->fr.snap.n_rows;
    if (ui->have_frame)
        qt_ctl_frame_free(&ui->fr);
    ui->fr = f;
    ui->have_frame = 1;
    uint64_t now = qt_now_ms();
    int newest = (ui->rate_head + UI_RATE_SAMPLES - 1) % UI_RATE_SAMPLES;
    /* one sample every ~250 ms: the ring spans ~15 s */
    if (ui->rate_n == 0 || now - ui->rate_t[newest] >= 240) {
        ui->rate_t[ui->rate_head] = now;
        ui->rate_done[ui->rate_head] = f.snap.done;
        ui->rate_head = (ui->rate_head + 1) % UI_RATE_SAMPLES;
        if (ui->rate_n < UI_RATE_SAMPLES)
            ui->rate_n++;
    }
    if (ui->focus != FOCUS_EVENTS) {   /* an unfocused log follows the newest event */
        ui->v[L_EVENTS].key[0] = '\0';
        ui->v[L_EVENTS].sel = ui->v[L_EVENTS].top = 0;
    }
    ui_views_build(ui);
    ui_detail_refresh(ui);
    if (old_rows != f.snap.n_rows)
        relayout(ui);
    return 0;
}

/* A click selects the row under it (and focuses its panel); the wheel
 * scrolls the panel under the pointer. */
static int on_mouse(ui_state *ui)
{
    MEVENT me;
    if (getmouse(&me) != OK || ui->help || ui->ovl || ui->confirm || ui->prompt)
        return 0;
    static const ui_focus panels[] = { FOCUS_LIMITS, FOCUS_JOBS, FOCUS_WORKFLOWS, FOCUS_EVENTS };
    for (size_t k = 0; k < QT_ARRAY_LEN(panels); k++) {
        ui_focus f = panels[k];
        int keep = ui->focus;
        ui->focus = f;   /* the list that panel shows (JOBS: JOBS, FAILED or FLEET) */
        ui_list l = ui_focus_list(ui);
        ui->focus = keep;
        const qt_ui_rect *r = &ui->lay.r[ui_list_panel(l)];
        if (!r->h || me.y < r->y || me.y >= r->y + r->h || me.x < r->x || me.x >= r->x + r->w)
            continue;
        ui_view *v = &ui->v[l];
        ui->focus = f;
        if (me.bstate & (BUTTON4_PRESSED | BUTTON5_PRESSED)) {
            int d = me.bstate & BUTTON4_PRESSED ? -3 : 3;
            v->sel += d;
        } else if (me.bstate & (BUTTON1_CLICKED | BUTTON1_PRESSED | BUTTON1_RELEASED)) {
            int row = me.y - r->y - ui_list_header_rows(l);
            if (row >= 0)
                v->sel = v->top + row;
        }
        if (v->sel >= v->n)
            v->sel = v->n - 1;
        if (v->sel < 0)
            v->sel = 0;
        ui_view_remember(ui, l);
        return UI_REDRAW;
    }
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
    mousemask(BUTTON1_CLICKED | BUTTON1_PRESSED | BUTTON4_PRESSED | BUTTON5_PRESSED, NULL);
    mouseinterval(0);
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

static void free_ui(ui_state *ui)
{
    if (ui->have_frame)
        qt_ctl_frame_free(&ui->fr);
    for (int l = 0; l < L__COUNT; l++)
        free(ui->v[l].idx);
    free(ui);
}

static void pick_theme(ui_state *ui, char *theme_err, size_t len)
{
    const char *tname = ui->opts.theme;
    if (!tname || !*tname)
        tname = getenv("QUOTATOP_THEME");
    if (!tname || !*tname)
        tname = "default";
    ui->theme_idx = -1;
    for (int i = 0; i < QT_THEME_CYCLE_LEN; i++)
        if (!strcmp(tname, qt_theme_cycle[i]))
            ui->theme_idx = i;
    if (ui_theme_select(ui, tname, theme_err, len)) {
        ui_status(ui, "%s", theme_err);
        ui->status_until = qt_now_ms() + 15000;
        if (ui->theme_idx < 0)
            ui->theme_idx = 0;
    } else {
        theme_err[0] = '\0';
    }
}

/* The loop: frames, drawing, keys. Returns why it ended. */
static qt_ui_exit run_loop(ui_state *ui)
{
    int period = ui->opts.refresh_ms > 0 ? ui->opts.refresh_ms : 250;
    uint64_t next_frame = 0;
    int dirty = 1;
    while (ui->exit != QT_UI_EXIT_ERROR) {
        if (ui->opts.should_stop && ui->opts.should_stop())
            return QT_UI_EXIT_SIGNAL;
        uint64_t now = qt_now_ms();
        if (ui->opts.deadline_ms && now >= ui->opts.deadline_ms)
            return QT_UI_EXIT_DEADLINE;
        if (now >= next_frame) {
            if (take_frame(ui))
                return ui->remote ? QT_UI_EXIT_GONE : QT_UI_EXIT_ERROR;
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
        if (ui->fr.finished && !ui->opts.stay && !ui->remote)
            return QT_UI_EXIT_DONE;   /* batch users expect `run` to end with its jobs */
        now = qt_now_ms();
        int64_t wait = next_frame > now ? (int64_t)(next_frame - now) : 0;
        if (ui->opts.deadline_ms && ui->opts.deadline_ms > now && (int64_t)(ui->opts.deadline_ms - now) < wait)
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
        int flags = ch == KEY_MOUSE ? on_mouse(ui) : ui_key(ui, ch);
        if (flags & UI_QUIT)
            return ui->exit;
        if (flags & UI_RETHEME)
            clearok(curscr, TRUE);
        if ((flags & UI_RESNAP) && take_frame(ui))
            return ui->remote ? QT_UI_EXIT_GONE : QT_UI_EXIT_ERROR;
        if (flags)
            dirty = 1;
    }
    return ui->exit;
}

qt_ui_exit qt_ui_run_source(qt_ctl_source *src, const qt_ui_opts *opts)
{
    ui_state *ui = calloc(1, sizeof *ui);
    if (!ui)
        return QT_UI_EXIT_ERROR;
    ui->src = src;
    ui->remote = qt_ctl_source_remote(src);
    ui->opts = *opts;
    ui->ev_type = -1;
    for (int l = 0; l < L__COUNT; l++)
        ui->v[l].sort = -1;
    if (!ui->opts.t0_ms)
        ui->opts.t0_ms = qt_now_ms();
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
        free_ui(ui);
        return QT_UI_EXIT_NO_TERMINAL;
    }
    char theme_err[700];
    pick_theme(ui, theme_err, sizeof theme_err);
    ui->exit = QT_UI_EXIT_QUIT;
    qt_ui_exit why = QT_UI_EXIT_ERROR;
    if (take_frame(ui) == 0) {
        relayout(ui);
        why = run_loop(ui);
    } else if (ui->remote) {
        why = QT_UI_EXIT_GONE;
    }
    teardown_terminal(ui);
    if (theme_err[0])
        fprintf(stderr, "quotatop: %s\n", theme_err);
    if (why == QT_UI_EXIT_ERROR)
        fprintf(stderr, "quotatop: the dashboard ran out of memory; continuing without it\n");
    if (why == QT_UI_EXIT_GONE)
        fprintf(stderr, "quotatop top: %s\n", ui->gone);
    free_ui(ui);
    return why;
}
