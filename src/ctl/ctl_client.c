/* ctl_client.c: sources a dashboard reads frames from and sends commands to.
 *
 * DESIGN
 * Three kinds behind one small table of functions: the local plane (calls
 * qt_ctl_* directly, no JSON), a unix control socket (one connection kept
 * open; a request line out, an answer line in, with a receive timeout so a
 * wedged server cannot freeze the viewer), and the proxy's HTTP route
 * POST /control (libcurl, bearer token) for another host. The remote kinds
 * exchange the JSON of ctl_json.c; answers are capped at 32 MiB.
 */
#include "ctl_int.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cJSON.h>

#define MAX_ANSWER (32u << 20)

typedef enum { SRC_LOCAL, SRC_UNIX, SRC_HTTP } src_kind;

struct qt_ctl_source {
    src_kind kind;
    qt_ctl *local;
    int fd;
    char *inbuf;                 /* bytes read past the last answer */
    size_t inlen;
    CURL *curl;
    char url[512];
    char auth[600];
};

qt_ctl_source *qt_ctl_source_local(qt_ctl *c)
{
    qt_ctl_source *s = calloc(1, sizeof *s);
    if (s) {
        s->kind = SRC_LOCAL;
        s->local = c;
        s->fd = -1;
    }
    return s;
}

static int unix_connect(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof sa.sun_path) {
        snprintf(err, errlen, "socket path too long: %s", path);
        return -1;
    }
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
        snprintf(err, errlen, "cannot connect to %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    struct timeval tv = { 5, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

qt_ctl_source *qt_ctl_source_connect(const char *addr, const char *token, char *err, size_t errlen)
{
    qt_ctl_source *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->fd = -1;
    if (!strncmp(addr, "http://", 7) || !strncmp(addr, "https://", 8)) {
        s->kind = SRC_HTTP;
        size_t l = strlen(addr);
        while (l > 0 && addr[l - 1] == '/')
            l--;
        snprintf(s->url, sizeof s->url, "%.*s/control", (int)l, addr);
        if (token && *token)
            snprintf(s->auth, sizeof s->auth, "Authorization: Bearer %s", token);
        s->curl = curl_easy_init();
        if (!s->curl) {
            snprintf(err, errlen, "cannot start libcurl");
            free(s);
            return NULL;
        }
    } else {
        s->kind = SRC_UNIX;
        s->fd = unix_connect(addr, err, errlen);
        if (s->fd < 0) {
            free(s);
            return NULL;
        }
    }
    return s;
}

void qt_ctl_source_free(qt_ctl_source *s)
{
    if (!s)
        return;
    if (s->fd >= 0)
        close(s->fd);
    if (s->curl)
        curl_easy_cleanup(s->curl);
    free(s->inbuf);
    free(s);
}

int qt_ctl_source_remote(const qt_ctl_source *s) { return s && s->kind != SRC_LOCAL; }

/* One request line over the socket; returns the answer line (caller frees). */
static char *unix_call(qt_ctl_source *s, const char *req, char *err, size_t errlen)
{
    size_t n = strlen(req);
    if (send(s->fd, req, n, MSG_NOSIGNAL) != (ssize_t)n || send(s->fd, "\n", 1, MSG_NOSIGNAL) != 1) {
        snprintf(err, errlen, "the process went away (%s)", strerror(errno));
        return NULL;
    }
    for (;;) {
        char *nl = s->inbuf ? memchr(s->inbuf, '\n', s->inlen) : NULL;
        if (nl) {
            size_t line = (size_t)(nl - s->inbuf);
            char *ans = malloc(line + 1);
            if (ans) {
                memcpy(ans, s->inbuf, line);
                ans[line] = '\0';
            }
            memmove(s->inbuf, nl + 1, s->inlen - line - 1);
            s->inlen -= line + 1;
            return ans;
        }
        if (s->inlen > MAX_ANSWER) {
            snprintf(err, errlen, "answer too large");
            return NULL;
        }
        char *g = realloc(s->inbuf, s->inlen + 65536);
        if (!g) {
            snprintf(err, errlen, "out of memory");
            return NULL;
        }
        s->inbuf = g;
        ssize_t r = recv(s->fd, s->inbuf + s->inlen, 65536, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            snprintf(err, errlen, "the process went away (%s)", r == 0 ? "connection closed" : strerror(errno));
            return NULL;
        }
        s->inlen += (size_t)r;
    }
}

typedef struct {
    char *buf;
    size_t len;
} grow;

static size_t on_body(char *p, size_t sz, size_t nm, void *ud)
{
    grow *g = ud;
    size_t n = sz * nm;
    if (g->len + n > MAX_ANSWER)
        return 0;
    char *b = realloc(g->buf, g->len + n + 1);
    if (!b)
        return 0;
    memcpy(b + g->len, p, n);
    g->buf = b;
    g->len += n;
    b[g->len] = '\0';
    return n;
}

static char *http_call(qt_ctl_source *s, const char *req, char *err, size_t errlen)
{
    grow g = { 0 };
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (s->auth[0])
        h = curl_slist_append(h, s->auth);
    CURL *c = s->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, s->url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, req);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &g);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    if (rc != CURLE_OK || status != 200) {
        if (rc != CURLE_OK)
            snprintf(err, errlen, "%s: %s", s->url, curl_easy_strerror(rc));
        else if (status == 401)
            snprintf(err, errlen, "%s: 401: wrong or missing token (the server's proxy.token_env)", s->url);
        else
            snprintf(err, errlen, "%s: HTTP %ld", s->url, status);
        free(g.buf);
        return NULL;
    }
    return g.buf ? g.buf : strdup("");
}

static char *call(qt_ctl_source *s, const char *req, char *err, size_t errlen)
{
    return s->kind == SRC_UNIX ? unix_call(s, req, err, errlen) : http_call(s, req, err, errlen);
}

qt_err qt_ctl_source_frame(qt_ctl_source *s, qt_ctl_frame *out, char *err, size_t errlen)
{
    if (s->kind == SRC_LOCAL) {
        qt_err r = qt_ctl_frame_take(s->local, out);
        if (r != QT_OK)
            snprintf(err, errlen, "%s", qt_strerror(r));
        return r;
    }
    char *ans = call(s, "{\"op\":\"frame\"}", err, errlen);
    if (!ans) {
        memset(out, 0, sizeof *out);
        return QT_ERR_IO;
    }
    qt_err r = qt_ctl_frame_from_json(ans, strlen(ans), out);
    if (r != QT_OK)
        snprintf(err, errlen, "malformed frame from the process");
    free(ans);
    return r;
}

qt_err qt_ctl_source_detail(qt_ctl_source *s, const char *id, qt_job_detail *out)
{
    if (s->kind == SRC_LOCAL) {
        memset(out, 0, sizeof *out);
        return qt_engine_job_detail(s->local->e, id, out);
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "op", "detail");
    cJSON_AddStringToObject(o, "id", id);
    char *req = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    char err[200];
    char *ans = req ? call(s, req, err, sizeof err) : NULL;
    free(req);
    qt_err r = QT_ERR_IO;
    cJSON *a = ans ? cJSON_Parse(ans) : NULL;
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "ok"))) {
        char *dj = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(a, "detail"));
        r = dj ? qt_ctl_detail_from_json(dj, strlen(dj), out) : QT_ERR_NOMEM;
        free(dj);
    } else if (a) {
        r = QT_ERR_NOTFOUND;
    }
    cJSON_Delete(a);
    free(ans);
    return r;
}

qt_err qt_ctl_source_exec(qt_ctl_source *s, const qt_ctl_cmd *cmd, char *msg, size_t len)
{
    if (s->kind == SRC_LOCAL)
        return qt_ctl_exec(s->local, cmd, msg, len);
    char *cj = qt_ctl_cmd_to_json(cmd);
    size_t n = cj ? strlen(cj) + 32 : 0;
    char *req = cj ? malloc(n) : NULL;
    if (req)
        snprintf(req, n, "{\"op\":\"cmd\",\"cmd\":%s}", cj);
    free(cj);
    char err[200] = "out of memory";
    char *ans = req ? call(s, req, err, sizeof err) : NULL;
    free(req);
    if (!ans) {
        snprintf(msg, len, "%s", err);
        return QT_ERR_IO;
    }
    cJSON *a = cJSON_Parse(ans);
    free(ans);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(a, "msg");
    snprintf(msg, len, "%s", cJSON_IsString(m) ? m->valuestring : "no answer");
    qt_err r = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "ok")) ? QT_OK : QT_ERR_INVALID;
    cJSON_Delete(a);
    return r;
}
