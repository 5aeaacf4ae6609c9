/* blockread.so: make read() of chosen files wait for a signal.
 *
 * LD_PRELOAD=blockread.so BLOCKREAD_PATHS=/a:/b BLOCKREAD_READY=/tmp/ready
 *
 * A read() of a file whose path is one of BLOCKREAD_PATHS first creates
 * BLOCKREAD_READY (so a test knows the reader is there), then waits in
 * sigsuspend() until a signal is delivered, and fails with EINTR, as a
 * read of a slow device interrupted by that signal would.  A signal whose
 * action is to end the process ends it there.  Signals are blocked before
 * the ready file is made, so one sent as soon as it appears is not lost.
 * Everything else is the real read().
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int chosen(int fd)
{
    const char *paths = getenv("BLOCKREAD_PATHS");
    char link[64], path[4096];
    ssize_t length;

    if (paths == NULL)
        return 0;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    length = readlink(link, path, sizeof path - 1);
    if (length <= 0)
        return 0;
    path[length] = '\0';
    for (const char *start = paths; *start; ) {
        const char *end = strchr(start, ':');
        size_t size = end ? (size_t)(end - start) : strlen(start);
        if (size == (size_t)length && strncmp(start, path, size) == 0)
            return 1;
        if (!end)
            break;
        start = end + 1;
    }
    return 0;
}

ssize_t read(int fd, void *buffer, size_t count)
{
    static ssize_t (*real_read)(int, void *, size_t);
    sigset_t all, before;
    const char *ready = getenv("BLOCKREAD_READY");

    if (real_read == NULL)
        real_read = (ssize_t (*)(int, void *, size_t))dlsym(RTLD_NEXT, "read");
    if (!chosen(fd))
        return real_read(fd, buffer, count);
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &before);
    if (ready != NULL)
        close(open(ready, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    sigsuspend(&before);  /* returns once a handled signal has run */
    sigprocmask(SIG_SETMASK, &before, NULL);
    errno = EINTR;
    return -1;
}
