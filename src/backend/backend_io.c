/* backend_io.c: hiredis's async context on a qt_loop.
 *
 * hiredis asks for read and write interest through five hooks (addRead,
 * delRead, addWrite, delWrite, cleanup); this adapter keeps the wanted
 * events of the context's fd and mirrors them with qt_loop_io_watch. When
 * the fd is ready it calls redisAsyncHandleRead / redisAsyncHandleWrite.
 * A read may end the context (a disconnect frees it and calls cleanup), so
 * the adapter is a value owned by the backend, never freed by hiredis:
 * cleanup only removes the watch and clears io->ac, and the write step
 * looks at io->ac again before using it. hiredis 0.14 has no command
 * timeouts: the backend keeps its own deadlines on a timer (backend.c).
 */
#include "backend_int.h"

#include <hiredis/async.h>

static void io_apply(qt_redis_io *io)
{
    if (io->fd >= 0)
        qt_loop_io_watch(io->loop, io->fd, io->events, qt_redis_io_ready, io);
}

void qt_redis_io_ready(void *ud, int fd, unsigned ready)
{
    (void)fd;
    qt_redis_io *io = ud;
    if (io->ac && (ready & (QT_LOOP_READ | QT_LOOP_ERROR)))
        redisAsyncHandleRead(io->ac);
    if (io->ac && (ready & QT_LOOP_WRITE))
        redisAsyncHandleWrite(io->ac);
}

static void add_read(void *p)  { qt_redis_io *io = p; io->events |= QT_LOOP_READ; io_apply(io); }
static void del_read(void *p)  { qt_redis_io *io = p; io->events &= ~(unsigned)QT_LOOP_READ; io_apply(io); }
static void add_write(void *p) { qt_redis_io *io = p; io->events |= QT_LOOP_WRITE; io_apply(io); }
static void del_write(void *p) { qt_redis_io *io = p; io->events &= ~(unsigned)QT_LOOP_WRITE; io_apply(io); }

static void cleanup(void *p)
{
    qt_redis_io *io = p;
    if (io->fd >= 0)
        qt_loop_io_watch(io->loop, io->fd, 0, NULL, NULL);
    io->fd = -1;
    io->events = 0;
    io->ac = NULL;
}

void qt_redis_io_attach(qt_redis_io *io, qt_loop *l, redisAsyncContext *ac)
{
    io->loop = l;
    io->ac = ac;
    io->fd = ac->c.fd;
    io->events = 0;
    ac->ev.data = io;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
}
