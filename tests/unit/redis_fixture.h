/* redis_fixture.h: a real redis-server for unit tests, started on a free
 * loopback port by the test process and killed by its PID (header-only:
 * the unit suites are linked into one binary, so everything is static).
 * Thread-safety: one test process, one thread. */
#ifndef QT_REDIS_FIXTURE_H
#define QT_REDIS_FIXTURE_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    pid_t pid;
    int port;
} redis_fixture;

static int rf_port_free(int port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int ok = bind(s, (struct sockaddr *)&a, sizeof a) == 0;
    close(s);
    return ok;
}

static int rf_have_redis(void)
{
    return system("command -v redis-server >/dev/null 2>&1") == 0;
}

/* Starts redis-server; 0 on success (ready for PING), -1 otherwise. extra
 * is appended to its command line words (NULL-terminated, may be NULL). */
static int rf_start(redis_fixture *f, const char *const *extra)
{
    f->pid = -1;
    unsigned seed = (unsigned)getpid() * 2654435761u ^ (unsigned)time(NULL);
    for (int tries = 0; tries < 50; tries++) {
        f->port = 20000 + (int)((seed + (unsigned)tries * 7919u) % 12000u);
        if (rf_port_free(f->port))
            break;
    }
    char port[16];
    snprintf(port, sizeof port, "%d", f->port);
    pid_t p = fork();
    if (p < 0)
        return -1;
    if (p == 0) {
        int dn = open("/dev/null", O_RDWR);
        dup2(dn, 1);
        dup2(dn, 2);
        const char *argv[32] = { "redis-server", "--port", port, "--bind", "127.0.0.1",
                                 "--save", "", "--appendonly", "no", "--dir", "/tmp" };
        int n = 11;
        for (int i = 0; extra && extra[i] && n < 31; i++)
            argv[n++] = extra[i];
        argv[n] = NULL;
        execvp("redis-server", (char *const *)argv);
        _exit(127);
    }
    f->pid = p;
    for (int i = 0; i < 200; i++) {
        struct timeval tv = { 0, 200000 };
        redisContext *c = redisConnectWithTimeout("127.0.0.1", f->port, tv);
        if (c && !c->err) {
            redisReply *r = redisCommand(c, "PING");
            int ok = r && r->type == REDIS_REPLY_STATUS;
            freeReplyObject(r);
            redisFree(c);
            if (ok)
                return 0;
        } else if (c)
            redisFree(c);
        usleep(10000);
    }
    return -1;
}

static void rf_stop(redis_fixture *f)
{
    if (f->pid > 0) {
        kill(f->pid, SIGKILL);
        waitpid(f->pid, NULL, 0);
        f->pid = -1;
    }
}

#endif /* QT_REDIS_FIXTURE_H */
