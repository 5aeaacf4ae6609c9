/* Shared by the live-test helpers (see tests/realproc.py).
 *
 * Protocol: a helper prepares its processes, prints one line
 * "ready PID [PID...]" on stdout (its own pid first), then waits for
 * SIGTERM, SIGINT or SIGHUP (SIGUSR1 is taken and, unless the helper says
 * what it does, ignored).  On one it SIGKILLs and reaps its children and
 * exits 0, so a test's teardown leaves neither processes nor zombies.
 * Children die with the helper (PR_SET_PDEATHSIG) even if it is SIGKILLed,
 * and the helper gets SIGTERM if the test process dies first.
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
#include <unistd.h>

#define MAX_CHILDREN 64

static pid_t helper_children[MAX_CHILDREN];
static int helper_nchildren;

static inline void die(const char *what)
{
    perror(what);
    exit(2);
}

/* The signals a helper takes with sigwait(): the stop signals, and
 * SIGUSR1 for helpers that change something on request. */
static inline void helper_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGUSR1);
}

/* Block the helper's signals (sigwait() collects them later) and die with
 * the parent.  Called first thing, so children inherit the blocked mask. */
static inline void helper_start(void)
{
    sigset_t set;
    helper_signals(&set);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
        die("sigprocmask");
    pid_t parent = getppid();
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0)
        die("prctl(PR_SET_PDEATHSIG)");
    if (getppid() != parent)  /* the parent died before prctl */
        exit(1);
}

/* For a child: die at once when the helper dies, for whatever reason. */
static inline void child_start(pid_t helper)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != helper)
        _exit(1);
}

static inline void child_pause_forever(void)
{
    for (;;)
        pause();
}

static inline void add_child(pid_t pid)
{
    if (helper_nchildren >= MAX_CHILDREN) {
        fprintf(stderr, "too many children\n");
        exit(2);
    }
    helper_children[helper_nchildren++] = pid;
}

/* Private anonymous memory, every page written so that it is resident. */
static inline void *touch_mib(long mib)
{
    size_t size = (size_t)mib << 20;
    if (size == 0)
        return NULL;
    char *memory = mmap(NULL, size, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED)
        die("mmap");
    memset(memory, 0x5a, size);
    return memory;
}

static inline void report_ready(void)
{
    printf("ready %d", (int)getpid());
    for (int i = 0; i < helper_nchildren; i++)
        printf(" %d", (int)helper_children[i]);
    printf("\n");
    if (fflush(stdout) != 0)
        die("fflush");
}

/* The next of the helper's signals to arrive. */
static inline int wait_signal(void)
{
    sigset_t set;
    int sig;
    helper_signals(&set);
    while (sigwait(&set, &sig) != 0)
        ;
    return sig;
}

/* SIGKILL the children and reap them; the exit status for main(). */
static inline int stop_children(void)
{
    for (int i = 0; i < helper_nchildren; i++)
        kill(helper_children[i], SIGKILL);
    for (int i = 0; i < helper_nchildren; i++)
        while (waitpid(helper_children[i], NULL, __WALL) < 0 && errno == EINTR)
            ;
    return 0;
}

static inline int wait_for_stop_and_exit(void)
{
    while (wait_signal() == SIGUSR1)
        ;
    return stop_children();
}

static inline long parse_count(const char *text, const char *what, long max)
{
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno || *end || end == text || value < 0 || value > max) {
        fprintf(stderr, "bad %s: %s\n", what, text);
        exit(2);
    }
    return value;
}
