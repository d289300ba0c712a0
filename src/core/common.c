/* common.c: qt_strerror, hashing, the seeded random stream and redaction. See include/quotatop/common.h. */
#include "quotatop/common.h"

#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

const char *qt_strerror(qt_err err)
{
    switch (err) {
    case QT_OK:           return "ok";
    case QT_ERR_NOMEM:    return "out of memory";
    case QT_ERR_INVALID:  return "invalid argument or input";
    case QT_ERR_NOTFOUND: return "not found";
    case QT_ERR_IO:       return "input/output error";
    case QT_ERR_LIMIT:    return "limit exceeded";
    case QT_ERR_CLOSED:   return "closed";
    case QT_ERR_TIMEOUT:  return "timed out";
    case QT_ERR_BACKEND:  return "backend error";
    }
    return "unknown error";
}

uint64_t qt_hash_str(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

uint64_t qt_rand_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

double qt_rand01(uint64_t *state)
{
    return (double)(qt_rand_next(state) >> 11) / 9007199254740992.0;
}

size_t qt_redact(char *s, const char *const *secrets, size_t n)
{
    static const char mark[] = "[redacted]";
    size_t replaced = 0;
    for (size_t i = 0; s && secrets && i < n; i++) {
        const char *k = secrets[i];
        size_t kl = k ? strlen(k) : 0;
        if (kl < 4)
            continue;   /* too short to be a key: redacting it would garble text */
        char *p, *from = s;
        while ((p = strstr(from, k)) != NULL) {
            size_t ml = kl >= sizeof mark - 1 ? sizeof mark - 1 : kl;
            if (ml == kl && kl < sizeof mark - 1)
                memset(p, '*', kl);
            else
                memcpy(p, mark, ml);
            if (ml < kl)
                memmove(p + ml, p + kl, strlen(p + kl) + 1);
            from = p + ml;   /* never rescan the mark (a key of '*'s) */
            replaced++;
        }
    }
    return replaced;
}

int qt_bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len))
        return 0;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}
