/* forkshare MIB K: write MIB MiB of private anonymous memory, then fork K
 * children that keep it (copy-on-write, never written again): the pages
 * are shared by K+1 processes, so each one's Pss share is MIB/(K+1) MiB
 * while its Rss shows all of it.
 *
 * Prints "ready PARENT CHILD..." and waits; see common.h.
 */
#include "common.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: forkshare MIB K\n");
        return 2;
    }
    long mib = parse_count(argv[1], "MIB", 4096);
    long children = parse_count(argv[2], "K", MAX_CHILDREN);
    helper_start();
    pid_t helper = getpid();
    touch_mib(mib);
    fflush(stdout);
    for (long i = 0; i < children; i++) {
        pid_t pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0) {
            child_start(helper);
            child_pause_forever();
        }
        add_child(pid);
    }
    report_ready();
    return wait_for_stop_and_exit();
}
