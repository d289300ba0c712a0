/* cmd_top.c: `quotatop top [-c CONFIG] [--connect ADDR]` attaches the
 * dashboard to a running `run` or `serve`.
 *
 * DESIGN
 * The running process listens on a control socket in its state_dir
 * (STATE_DIR/MODE-PID.sock, mode 0600). top finds the live ones there (the
 * newest when several run), or takes --connect: a socket path, or the
 * proxy's http://HOST:PORT from another host (with the token of the
 * config's proxy.token_env, else $QUOTATOP_TOKEN). It then runs the same
 * dashboard over that source: frames come as JSON, keys go as commands.
 * q detaches and leaves the process running. --json prints one frame and
 * exits (for scripts and tests).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "cmd_common.h"
#include "quotatop/clock.h"
#include "quotatop/ctl.h"
#include "quotatop/http.h"
#include "quotatop/ui.h"

static const char top_usage[] =
    "usage: quotatop top [-c CONFIG] [--connect ADDR] [--json] [--theme NAME]\n"
    "Attaches the dashboard to a running `quotatop run` or `quotatop serve`: the same\n"
    "panels and keys, acting on that process; q detaches and leaves it running.\n"
    "Several viewers may attach at once.\n"
    "  -c CONFIG       find the control socket in CONFIG's state_dir (default: the\n"
    "                  default state dir, $XDG_STATE_HOME/quotatop or\n"
    "                  ~/.local/state/quotatop); run and serve print theirs at start:\n"
    "                  STATE_DIR/run-PID.sock, STATE_DIR/serve-PID.sock (mode 0600)\n"
    "  --connect ADDR  a control socket path, or http://HOST:PORT of a `serve` on\n"
    "                  another host (its /control route; the bearer token is read\n"
    "                  from CONFIG's proxy.token_env, else $QUOTATOP_TOKEN)\n"
    "  --json          print one frame as JSON and exit\n"
    "  --theme NAME    default, dark, light, mono, or a path to a .theme file\n";

static void default_state_dir(char *out, size_t len)
{
    const char *x = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    if (x && *x)
        snprintf(out, len, "%s/quotatop", x);
    else
        snprintf(out, len, "%s/.local/state/quotatop", home && *home ? home : ".");
}

/* Picks the address: --connect, else the newest live socket in state_dir. */
static int pick_addr(const char *connect, const char *state_dir, char *addr, size_t len)
{
    if (connect) {
        snprintf(addr, len, "%s", connect);
        return 0;
    }
    char found[8][256];
    size_t n = qt_ctl_find_sockets(state_dir, found, 8);
    if (!n) {
        fprintf(stderr, "quotatop top: no running `quotatop run` or `serve` has a control socket in %s\n"
                        "(start one with this state_dir, or pass --connect ADDR)\n", state_dir);
        return -1;
    }
    snprintf(addr, len, "%s", found[0]);
    if (n > 1) {
        fprintf(stderr, "quotatop top: %zu processes listen in %s; attaching to the newest, %s. Others:\n", n,
                state_dir, found[0]);
        for (size_t i = 1; i < n; i++)
            fprintf(stderr, "  quotatop top --connect %s\n", found[i]);
    }
    return 0;
}

static int print_json(qt_ctl_source *src)
{
    qt_ctl_frame f;
    char err[240];
    if (qt_ctl_source_frame(src, &f, err, sizeof err) != QT_OK) {
        fprintf(stderr, "quotatop top: %s\n", err);
        return 1;
    }
    char *js = qt_ctl_frame_to_json(&f);
    qt_ctl_frame_free(&f);
    if (!js)
        return 1;
    puts(js);
    free(js);
    return 0;
}

int qt_cmd_top(int argc, char **argv)
{
    const char *cfg_path = NULL, *connect = NULL, *theme = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "-c") || !strcmp(a, "--config")) && i + 1 < argc)
            cfg_path = argv[++i];
        else if (!strcmp(a, "--connect") && i + 1 < argc)
            connect = argv[++i];
        else if (!strcmp(a, "--theme") && i + 1 < argc)
            theme = argv[++i];
        else if (!strcmp(a, "--json"))
            json = 1;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(top_usage, stdout);
            return 0;
        } else {
            fprintf(stderr, "quotatop top: %s '%s'\n%s",
                    a[0] == '-' ? "unknown option (or missing value)" : "unexpected argument", a, top_usage);
            return 2;
        }
    }
    char state_dir[4096], addr[512];
    const char *token = getenv("QUOTATOP_TOKEN");
    qt_config *cfg = cfg_path ? qt_cmd_load_config(cfg_path) : NULL;
    if (cfg_path && !cfg)
        return 2;
    if (cfg) {
        snprintf(state_dir, sizeof state_dir, "%s", cfg->state_dir ? cfg->state_dir : "");
        if (cfg->proxy.token_env && getenv(cfg->proxy.token_env))
            token = getenv(cfg->proxy.token_env);
    } else {
        default_state_dir(state_dir, sizeof state_dir);
    }
    qt_config_free(cfg);
    if (pick_addr(connect, state_dir, addr, sizeof addr))
        return 2;
    qt_http_global_init();
    char err[300];
    qt_ctl_source *src = qt_ctl_source_connect(addr, token, err, sizeof err);
    if (!src) {
        fprintf(stderr, "quotatop top: %s\n", err);
        qt_http_global_cleanup();
        return 2;
    }
    int rc = 0;
    if (json) {
        rc = print_json(src);
    } else {
        qt_cmd_signals_install();
        char sub[560];
        snprintf(sub, sizeof sub, "attached to %s", addr);
        qt_ui_opts o = { .mode = "top", .t0_ms = qt_now_ms(), .theme = theme, .subtitle = sub,
                         .should_stop = qt_cmd_signal_count, .refresh_ms = 300 };
        qt_ui_exit why = qt_ui_run_source(src, &o);
        if (why == QT_UI_EXIT_NO_TERMINAL) {
            fprintf(stderr, "quotatop top: needs a terminal (or --json for one frame)\n");
            rc = 2;
        } else if (why == QT_UI_EXIT_GONE) {
            rc = 1;
        } else {
            fprintf(stderr, "quotatop top: detached from %s (it keeps running)\n", addr);
        }
    }
    qt_ctl_source_free(src);
    qt_http_global_cleanup();
    return rc;
}
