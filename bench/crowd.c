/*
 * crowd: the processes of the benchmark crowd (see crowd.py, which compiles
 * this on demand into bench/bin/crowd and drives it).
 *
 * One binary, two roles:
 *
 *   crowd launch READY_FD < SPEC
 *       The launcher.  SPEC has one line per crowd member:
 *           INDEX PATH HEAP_KIB NKIDS KID_WRITE_KIB KID_COMM
 *       For each line it forks and execs PATH (a hard link to this binary
 *       under a distinct name, so /proc/PID/exe differs per program) in the
 *       member role.  Then it stays as the parent and reaper of the crowd: it
 *       is a child subreaper, so grandchildren orphaned during teardown are
 *       reaped here too, and it exits once it has no children left.  SIGTERM
 *       to the launcher is forwarded to its whole process group.
 *
 *   PATH member INDEX HEAP_KIB NKIDS KID_WRITE_KIB KID_COMM READY_FD
 *       A member: maps HEAP_KIB of anonymous memory and writes every page,
 *       forks NKIDS children which share that heap copy-on-write (each child
 *       rewrites the first KID_WRITE_KIB of it, making that much private,
 *       and renames itself to KID_COMM, '+' read as a space, unless it is "-"),
 *       then sleeps.
 *
 * Every member and child writes "m|k INDEX PID\n" to READY_FD once its
 * memory is in place (writes under PIPE_BUF are atomic), so the driver knows
 * when the crowd is complete and which pids it holds.  Every process asks
 * for SIGKILL when its parent dies, so killing the driver takes the whole
 * crowd down even if it gets no chance to clean up.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
    fprintf(stderr, "crowd[%d]: %s: %s\n", (int)getpid(), what, strerror(errno));
    _exit(1);
}

/* Die with the parent; returns only if the parent is still `parent`. */
static void die_with_parent(pid_t parent)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        die("prctl(PR_SET_PDEATHSIG)");
    if (getppid() != parent)
        _exit(1);
}

static void report_ready(int fd, char role, long index)
{
    char line[64];
    int len = snprintf(line, sizeof line, "%c %ld %d\n", role, index, (int)getpid());
    if (write(fd, line, (size_t)len) != len)
        die("write(ready)");
    close(fd);
}

static void sleep_forever(void)
{
    for (;;)
        pause();
}

static int member(int argc, char **argv)
{
    if (argc != 8) {
        fprintf(stderr, "usage: PATH member INDEX HEAP_KIB NKIDS KID_WRITE_KIB KID_COMM READY_FD\n");
        return 2;
    }
    long index = atol(argv[2]);
    size_t heap = (size_t)atol(argv[3]) * 1024;
    long nkids = atol(argv[4]);
    size_t kid_write = (size_t)atol(argv[5]) * 1024;
    const char *kid_comm = argv[6];
    int ready_fd = atoi(argv[7]);
    long page = sysconf(_SC_PAGESIZE);

    unsigned char *mem = NULL;
    if (heap > 0) {
        mem = mmap(NULL, heap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED)
            die("mmap(heap)");
        /* One distinct non-zero byte per page: every page is really allocated. */
        for (size_t off = 0; off < heap; off += (size_t)page)
            mem[off] = (unsigned char)(1 + (index + off / (size_t)page) % 251);
    }
    if (kid_write > heap)
        kid_write = heap;

    /* Children that die before the crowd is torn down need no reaping. */
    signal(SIGCHLD, SIG_IGN);
    pid_t self = getpid();
    for (long k = 0; k < nkids; k++) {
        pid_t pid = fork();
        if (pid < 0)
            die("fork(child)");
        if (pid == 0) {
            die_with_parent(self);
            signal(SIGCHLD, SIG_DFL);
            if (strcmp(kid_comm, "-") != 0) {
                char name[16];
                snprintf(name, sizeof name, "%s", kid_comm);
                for (char *c = name; *c; c++)
                    if (*c == '+')
                        *c = ' ';
                prctl(PR_SET_NAME, name, 0, 0, 0);
            }
            for (size_t off = 0; off < kid_write; off += (size_t)page)
                mem[off] = (unsigned char)(mem[off] + 1 + k);
            report_ready(ready_fd, 'k', index);
            sleep_forever();
        }
    }
    report_ready(ready_fd, 'm', index);
    sleep_forever();
    return 0;
}

static volatile sig_atomic_t stopping;

static void forward_term(int sig)
{
    (void)sig;
    stopping = 1;
    signal(SIGTERM, SIG_IGN);
    kill(0, SIGTERM);
}

static int launch(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: crowd launch READY_FD < SPEC\n");
        return 2;
    }
    const char *ready_fd = argv[2];
    pid_t self = getpid();

    /* The driver is our parent: die with it (and so does everything below). */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        die("prctl(PR_SET_PDEATHSIG)");
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
        die("prctl(PR_SET_CHILD_SUBREAPER)");
    signal(SIGTERM, forward_term);

    char path[4096], comm[64];
    long index, heap_kib, nkids, kid_write_kib;
    char a_index[32], a_heap[32], a_nkids[32], a_write[32];
    int rc;
    while ((rc = scanf("%ld %4095s %ld %ld %ld %63s", &index, path, &heap_kib, &nkids,
                       &kid_write_kib, comm)) == 6 && !stopping) {
        snprintf(a_index, sizeof a_index, "%ld", index);
        snprintf(a_heap, sizeof a_heap, "%ld", heap_kib);
        snprintf(a_nkids, sizeof a_nkids, "%ld", nkids);
        snprintf(a_write, sizeof a_write, "%ld", kid_write_kib);
        pid_t pid;
        /* A crowd of thousands can briefly hit transient limits: retry. */
        for (int attempt = 0;; attempt++) {
            pid = fork();
            if (pid >= 0 || errno != EAGAIN || attempt == 50)
                break;
            struct timespec pause_ts = {0, 20 * 1000 * 1000};
            nanosleep(&pause_ts, NULL);
        }
        if (pid < 0)
            die("fork(member)");
        if (pid == 0) {
            die_with_parent(self);
            signal(SIGTERM, SIG_DFL);
            execl(path, path, "member", a_index, a_heap, a_nkids, a_write, comm, ready_fd,
                  (char *)NULL);
            die(path);
        }
    }
    if (stopping) {
        /* Again, for a member forked while the first signal was sent. */
        kill(0, SIGTERM);
    } else if (rc != EOF) {
        fprintf(stderr, "crowd: bad spec line after index %ld\n", index);
        forward_term(SIGTERM);
    }
    close(atoi(ready_fd));
    fclose(stdin);

    /* Reap until no child (or adopted orphan) is left. */
    for (;;) {
        if (wait(NULL) < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ECHILD)
                break;
            die("wait");
        }
    }
    return rc == EOF && !stopping ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "launch") == 0)
        return launch(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "member") == 0)
        return member(argc, argv);
    fprintf(stderr, "usage: crowd launch READY_FD < SPEC  (see crowd.py)\n");
    return 2;
}
