/* ctl_server.c: the control socket and the request handler.
 *
 * DESIGN
 * One thread owns the listening unix socket and every viewer connected to
 * it, in one poll() loop (a viewer is a handful of requests a second, so
 * one thread serves many; no thread per viewer). A request is one line of
 * JSON ({"op":"frame"}, {"op":"detail","id":ID}, {"op":"cmd","cmd":{...}});
 * the answer is one line of JSON written before the next request is read.
 * Answers are written with a send timeout: a viewer that stops reading is
 * dropped instead of stalling the others. Requests longer than 64 KiB drop
 * the viewer. A byte on the wake pipe stops the thread.
 *
 * The socket lives at STATE_DIR/MODE-PID.sock, created with umask 077 (so
 * it is 0600 from the start) in a directory made 0700; it is removed when
 * the plane is freed. `top` finds live ones by connecting.
 */
#include "ctl_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#define MAX_VIEWERS 32
#define MAX_REQ (64 * 1024)

uint64_t ctl_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static char *answer_err(const char *msg)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "ok", 0);
    cJSON_AddStringToObject(o, "error", msg);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

char *qt_ctl_handle(qt_ctl *c, const char *req, size_t len)
{
    cJSON *o = cJSON_ParseWithLength(req, len);
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(o, "op");
    char *out = NULL;
    if (!c || !c->e) {
        out = answer_err("not started yet");
    } else if (!cJSON_IsString(op)) {
        out = answer_err("a request is {\"op\": \"frame\" | \"detail\" | \"cmd\", ...}");
    } else if (!strcmp(op->valuestring, "frame")) {
        qt_ctl_frame f;
        if (qt_ctl_frame_take(c, &f) == QT_OK) {
            out = qt_ctl_frame_to_json(&f);
            qt_ctl_frame_free(&f);
        } else {
            out = answer_err("out of memory");
        }
    } else if (!strcmp(op->valuestring, "detail")) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
        qt_job_detail *d = calloc(1, sizeof *d);
        qt_err r = !d ? QT_ERR_NOMEM : !cJSON_IsString(id) ? QT_ERR_INVALID
                                                            : qt_engine_job_detail(c->e, id->valuestring, d);
        if (r == QT_OK) {
            char *dj = qt_ctl_detail_to_json(d);
            size_t n = dj ? strlen(dj) + 32 : 0;
            out = dj ? malloc(n) : NULL;
            if (out)
                snprintf(out, n, "{\"ok\":true,\"detail\":%s}", dj);
            free(dj);
        } else {
            out = answer_err(r == QT_ERR_NOTFOUND ? "not found (the job has its result)" : qt_strerror(r));
        }
        free(d);
    } else if (!strcmp(op->valuestring, "cmd")) {
        qt_ctl_cmd cmd;
        char msg[300];
        char *cj = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(o, "cmd"));
        qt_err r = cj ? qt_ctl_cmd_from_json(cj, strlen(cj), &cmd) : QT_ERR_INVALID;
        free(cj);
        if (r == QT_OK)
            r = qt_ctl_exec(c, &cmd, msg, sizeof msg);
        else
            snprintf(msg, sizeof msg, "malformed command");
        cJSON *a = cJSON_CreateObject();
        cJSON_AddBoolToObject(a, "ok", r == QT_OK);
        cJSON_AddStringToObject(a, "msg", msg);
        out = cJSON_PrintUnformatted(a);
        cJSON_Delete(a);
    } else {
        out = answer_err("unknown op");
    }
    cJSON_Delete(o);
    return out;
}

qt_err qt_ctl_socket_path(const char *state_dir, const char *mode, char *out, size_t len)
{
    struct sockaddr_un sa;
    if (!state_dir || !*state_dir)
        return QT_ERR_INVALID;
    int n = snprintf(out, len, "%s/%s-%ld.sock", state_dir, mode, (long)getpid());
    if (n < 0 || (size_t)n >= len || (size_t)n >= sizeof sa.sun_path)
        return QT_ERR_INVALID;
    return QT_OK;
}

static int mkdirs(const char *dir)
{
    char p[256];
    snprintf(p, sizeof p, "%s", dir);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            if (mkdir(p, 0700) && errno != EEXIST)
                return -1;
            *s = '/';
        }
    return mkdir(p, 0700) && errno != EEXIST ? -1 : 0;
}

typedef struct {
    int fd;
    char *buf;
    size_t len;
} viewer;

static int write_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads what the viewer sent and answers each whole line. -1: drop it. */
static int serve_viewer(qt_ctl *c, viewer *v)
{
    char tmp[8192];
    ssize_t n = recv(v->fd, tmp, sizeof tmp, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (n <= 0 || v->len + (size_t)n > MAX_REQ)
        return -1;
    char *g = realloc(v->buf, v->len + (size_t)n + 1);
    if (!g)
        return -1;
    v->buf = g;
    memcpy(v->buf + v->len, tmp, (size_t)n);
    v->len += (size_t)n;
    char *nl;
    while ((nl = memchr(v->buf, '\n', v->len))) {
        size_t line = (size_t)(nl - v->buf);
        char *ans = qt_ctl_handle(c, v->buf, line);
        int bad = !ans || write_all(v->fd, ans, strlen(ans)) || write_all(v->fd, "\n", 1);
        free(ans);
        if (bad)
            return -1;
        memmove(v->buf, nl + 1, v->len - line - 1);
        v->len -= line + 1;
    }
    return 0;
}

static void accept_viewer(int lfd, viewer *vs, int *nv)
{
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return;
    if (*nv >= MAX_VIEWERS) {
        const char *full = "{\"ok\":false,\"error\":\"too many viewers\"}\n";
        (void)!write(fd, full, strlen(full));
        close(fd);
        return;
    }
    struct timeval tv = { 2, 0 };   /* a viewer that stops reading is dropped */
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    vs[*nv].fd = fd;
    vs[*nv].buf = NULL;
    vs[*nv].len = 0;
    (*nv)++;
}

static void *server_main(void *arg)
{
    qt_ctl *c = arg;
    viewer vs[MAX_VIEWERS];
    int nv = 0;
    for (;;) {
        struct pollfd p[MAX_VIEWERS + 2];
        p[0] = (struct pollfd){ .fd = c->wake[0], .events = POLLIN };
        p[1] = (struct pollfd){ .fd = c->listen_fd, .events = POLLIN };
        for (int i = 0; i < nv; i++)
            p[2 + i] = (struct pollfd){ .fd = vs[i].fd, .events = POLLIN };
        int r = poll(p, (nfds_t)(2 + nv), -1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 || (p[0].revents & POLLIN))
            break;
        for (int i = nv - 1; i >= 0; i--) {
            if (!p[2 + i].revents)
                continue;
            if (serve_viewer(c, &vs[i])) {
                close(vs[i].fd);
                free(vs[i].buf);
                vs[i] = vs[--nv];
            }
        }
        if (p[1].revents & POLLIN)
            accept_viewer(c->listen_fd, vs, &nv);
    }
    for (int i = 0; i < nv; i++) {
        close(vs[i].fd);
        free(vs[i].buf);
    }
    return NULL;
}

qt_err qt_ctl_listen(qt_ctl *c, const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof sa.sun_path || strlen(path) >= sizeof c->path) {
        snprintf(err, errlen, "control socket path too long: %s", path);
        return QT_ERR_INVALID;
    }
    char dir[256];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        if (mkdirs(dir)) {
            snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
            return QT_ERR_IO;
        }
    }
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return QT_ERR_IO;
    }
    unlink(path);   /* our own pid's name: a leftover of an earlier process with this pid */
    mode_t old = umask(077);
    int b = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (b || listen(fd, 16)) {
        snprintf(err, errlen, "cannot listen on %s: %s", path, strerror(errno));
        close(fd);
        return QT_ERR_IO;
    }
    chmod(path, 0600);
    if (pipe2(c->wake, O_CLOEXEC)) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        close(fd);
        unlink(path);
        return QT_ERR_IO;
    }
    c->listen_fd = fd;
    snprintf(c->path, sizeof c->path, "%s", path);
    if (pthread_create(&c->thread, NULL, server_main, c)) {
        snprintf(err, errlen, "cannot start the control thread");
        close(fd);
        close(c->wake[0]);
        close(c->wake[1]);
        c->listen_fd = c->wake[0] = c->wake[1] = -1;
        unlink(path);
        return QT_ERR_NOMEM;
    }
    c->listening = 1;
    return QT_OK;
}

void ctl_server_stop(qt_ctl *c)
{
    if (!c->listening)
        return;
    (void)!write(c->wake[1], "x", 1);
    pthread_join(c->thread, NULL);
    close(c->listen_fd);
    close(c->wake[0]);
    close(c->wake[1]);
    unlink(c->path);
    c->listening = 0;
}

/* ------------------------------------------------------------ finding */

static int connectable(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    size_t n = strlen(path);
    if (n >= sizeof sa.sun_path)
        return 0;
    memcpy(sa.sun_path, path, n + 1);   /* fits: checked above */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    int ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

size_t qt_ctl_find_sockets(const char *state_dir, char out[][256], size_t max)
{
    DIR *d = state_dir && *state_dir ? opendir(state_dir) : NULL;
    if (!d)
        return 0;
    size_t n = 0;
    time_t mt[64];
    struct dirent *de;
    while ((de = readdir(d)) && n < max && n < 64) {
        size_t l = strlen(de->d_name);
        if (l < 6 || strcmp(de->d_name + l - 5, ".sock"))
            continue;
        char p[256];
        if (snprintf(p, sizeof p, "%s/%s", state_dir, de->d_name) >= (int)sizeof p)
            continue;
        struct stat st;
        if (stat(p, &st) || !S_ISSOCK(st.st_mode) || !connectable(p))
            continue;
        size_t k = n++;
        while (k > 0 && mt[k - 1] < st.st_mtime) {   /* newest first */
            mt[k] = mt[k - 1];
            memcpy(out[k], out[k - 1], 256);
            k--;
        }
        mt[k] = st.st_mtime;
        snprintf(out[k], 256, "%s", p);
    }
    closedir(d);
    return n;
}
