/* bare_client.c: the least a client can do to send N chat requests at once:
 * a reference for `run`'s 10,000-job figure (bench/run_scale.sh), measured
 * in the same run against the same upstream, so the ratio shows what the
 * kernel and the upstream cost on this machine and what `run` adds.
 *
 *   build/bench/bare_client PORT N [MODEL]
 *
 * One thread, one epoll set, N non-blocking connections to 127.0.0.1:PORT
 * (at most 512 still connecting at a time, so the listen backlog never
 * overflows), one POST of the bench's chat body on each as soon as it is
 * writable, and each answer read until its "usage" arrives (the bench's
 * answers are one small chunk); then the connection is reset (SO_LINGER 0,
 * as `run` does, so no TIME_WAIT slows the next connect). No JSON, no
 * headers parsed, no limiter: nothing a real client could skip less.
 * Prints "bare: N requests: all sent at S s, all answered at T s" and exits
 * 1 on any error (named on stderr).
 */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WINDOW 512   /* connections still connecting at most */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int die(const char *what)
{
    perror(what);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bare_client PORT N [MODEL]\n");
        return 2;
    }
    int port = atoi(argv[1]), n = atoi(argv[2]);
    const char *model = argc > 3 ? argv[3] : "slow";
    if (port <= 0 || port > 65535 || n <= 0 || n > 1000000) {
        fprintf(stderr, "bare_client: PORT 1-65535 and N 1-1000000\n");
        return 2;
    }
    char body[256], req[1024];
    int bl = snprintf(body, sizeof body,
                      "{\"model\":\"%s\",\"max_tokens\":16,\"messages\":[{\"role\":\"user\","
                      "\"content\":\"Say hello in five words.\"}]}", model);
    int rl = snprintf(req, sizeof req,
                      "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                      "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                      port, bl, body);
    struct rlimit rl_nofile;
    if (getrlimit(RLIMIT_NOFILE, &rl_nofile) == 0 && rl_nofile.rlim_cur < (rlim_t)n + 16) {
        fprintf(stderr, "bare_client: RLIMIT_NOFILE %llu is below N + 16\n",
                (unsigned long long)rl_nofile.rlim_cur);
        return 1;
    }
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    int ep = epoll_create1(0);
    if (ep < 0)
        return die("epoll_create1");
    size_t cap = (size_t)n + 1024;
    unsigned char *sent_on = calloc(cap, 1);   /* [fd]: the request went */
    if (sent_on == NULL)
        return die("calloc");
    double t0 = now_s(), all_sent = 0;
    int started = 0, sent = 0, done = 0, rc = 0;
    struct epoll_event evs[256];
    while (done < n && rc == 0) {
        while (started < n && started - sent < WINDOW) {
            int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
            if (s < 0 || (size_t)s >= cap)
                return die("socket");
            int one = 1;
            setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            connect(s, (struct sockaddr *)&a, sizeof a);   /* EINPROGRESS */
            struct epoll_event e = { .events = EPOLLOUT, .data.fd = s };
            if (epoll_ctl(ep, EPOLL_CTL_ADD, s, &e) < 0)
                return die("epoll_ctl");
            started++;
        }
        int k = epoll_wait(ep, evs, 256, 30000);
        if (k == 0) {
            fprintf(stderr, "bare_client: nothing for 30 s (%d of %d answered)\n", done, n);
            rc = 1;
        }
        for (int i = 0; i < k && rc == 0; i++) {
            int s = evs[i].data.fd;
            if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
                fprintf(stderr, "bare_client: connection failed (%d of %d answered)\n", done, n);
                rc = 1;
            } else if (!sent_on[s]) {
                if (send(s, req, (size_t)rl, MSG_NOSIGNAL) != rl)
                    return die("send");
                sent_on[s] = 1;
                if (++sent == n)
                    all_sent = now_s() - t0;
                struct epoll_event e = { .events = EPOLLIN, .data.fd = s };
                epoll_ctl(ep, EPOLL_CTL_MOD, s, &e);
            } else {
                char b[4096];
                ssize_t r = recv(s, b, sizeof b, 0);
                if (r > 0 && memmem(b, (size_t)r, "\"usage\"", 7)) {
                    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
                    setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
                    close(s);
                    sent_on[s] = 0;
                    done++;
                } else if (r == 0) {
                    fprintf(stderr, "bare_client: the upstream closed before answering\n");
                    rc = 1;
                }
            }
        }
    }
    if (rc == 0)
        printf("bare: %d requests: all sent at %.3f s, all answered at %.3f s\n", n, all_sent,
               now_s() - t0);
    free(sent_on);
    close(ep);
    return rc;
}
