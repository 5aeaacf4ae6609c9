/* clone_vm N [MIB]: a process and N children made with clone(CLONE_VM)
 * but without CLONE_THREAD: separate processes (own pids, own entries in
 * /proc) sharing one address space, as some programs (and old
 * LinuxThreads) do.  MIB (default 32) MiB of private anonymous memory is
 * written first, so the shared address space has a size worth seeing.
 *
 * Prints "ready PARENT CHILD..." and waits; see common.h.
 */
#include "common.h"
#include <sched.h>

#define CHILD_STACK (64 * 1024)

static pid_t helper_pid;

static int child_main(void *unused)
{
    (void)unused;
    /* Only raw system calls from here: the C library's state (stdio, the
     * allocator) belongs to the parent, whose memory this is. */
    child_start(helper_pid);
    child_pause_forever();
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: clone_vm N [MIB]\n");
        return 2;
    }
    long children = parse_count(argv[1], "N", MAX_CHILDREN);
    long mib = argc > 2 ? parse_count(argv[2], "MIB", 4096) : 32;
    helper_start();
    helper_pid = getpid();
    touch_mib(mib);
    for (long i = 0; i < children; i++) {
        char *stack = mmap(NULL, CHILD_STACK, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (stack == MAP_FAILED)
            die("mmap stack");
        pid_t pid = clone(child_main, stack + CHILD_STACK, CLONE_VM | SIGCHLD, NULL);
        if (pid < 0)
            die("clone");
        add_child(pid);
    }
    report_ready();
    return wait_for_stop_and_exit();
}
