/* pausers N: fork N children that do nothing (up to 10000), so that the
 * live /proc holds enough processes for ps_mem to fork its readers.
 *
 * Prints "ready PID" (its own pid only: N pids do not fit a line a test
 * wants to read) and waits; see common.h.  On SIGTERM it kills and reaps
 * the children; they also die with it (PR_SET_PDEATHSIG).
 */
#include "common.h"

#define MAX_PAUSERS 10000

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: pausers N\n");
        return 2;
    }
    long count = parse_count(argv[1], "N", MAX_PAUSERS);
    helper_start();
    pid_t helper = getpid();
    pid_t *children = calloc((size_t)count + 1, sizeof(pid_t));
    if (children == NULL)
        die("calloc");
    fflush(stdout);
    for (long i = 0; i < count; i++) {
        pid_t pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0) {
            child_start(helper);
            child_pause_forever();
        }
        children[i] = pid;
    }
    report_ready();
    while (wait_signal() == SIGUSR1)
        ;
    for (long i = 0; i < count; i++)
        kill(children[i], SIGKILL);
    for (long i = 0; i < count; i++)
        while (waitpid(children[i], NULL, __WALL) < 0 && errno == EINTR)
            ;
    free(children);
    return 0;
}
