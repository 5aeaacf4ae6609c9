/*
 * measure: run one command and report its wall time, CPU time and peak RSS
 * (run.py compiles this on demand into bench/bin/measure and runs every
 * benchmarked command through it).
 *
 *   measure REPORT_FD INTERRUPT_AFTER -- COMMAND [ARG...]
 *
 * Forks, execs COMMAND (stdin, stdout and stderr inherited), and wait4()s
 * for it.  With INTERRUPT_AFTER > 0 (seconds), sends it SIGINT that long
 * after the start, and SIGKILL 10 s later if it is still running.  Then
 * writes one line to REPORT_FD:
 *
 *   STATUS WALL_NS UTIME_US STIME_US MAXRSS_KIB
 *
 * STATUS is the exit code, or minus the signal that ended it.
 *
 * Why not fork from Python: a process's ru_maxrss starts at the RSS of the
 * process it was forked from (exec keeps the high-water mark of the address
 * space it replaces, and with vfork that is the parent's own).  Forked from
 * the benchmark's Python (over 20 MiB) every tool would report at least
 * that; forked from this small program, it reports its own peak.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 5 || strcmp(argv[3], "--") != 0) {
        fprintf(stderr, "usage: measure REPORT_FD INTERRUPT_AFTER -- COMMAND [ARG...]\n");
        return 2;
    }
    int report_fd = atoi(argv[1]);
    double interrupt_after = atof(argv[2]);
    pid_t self = getpid();

    long long start = now_ns();
    pid_t pid = fork();
    if (pid < 0) {
        perror("measure: fork");
        return 2;
    }
    if (pid == 0) {
        /* If the benchmark kills us, the command goes too. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != self)
            _exit(127);
        close(report_fd);
        /* Started in a shell's background (nohup ... &), the benchmark has
         * SIGINT ignored, which exec keeps: a watch would never stop. */
        signal(SIGINT, SIG_DFL);
        execvp(argv[4], argv + 4);
        fprintf(stderr, "measure: %s: %s\n", argv[4], strerror(errno));
        _exit(127);
    }

    int status;
    struct rusage usage;
    pid_t got;
    if (interrupt_after <= 0) {
        do
            got = wait4(pid, &status, 0, &usage);
        while (got < 0 && errno == EINTR);
    } else {
        long long interrupt_at = start + (long long)(interrupt_after * 1e9);
        long long kill_at = interrupt_at + 10LL * 1000000000LL;
        int interrupted = 0;
        for (;;) {
            got = wait4(pid, &status, WNOHANG, &usage);
            if (got != 0)
                break;
            long long now = now_ns();
            if (!interrupted && now >= interrupt_at) {
                kill(pid, SIGINT);
                interrupted = 1;
            } else if (now >= kill_at) {
                kill(pid, SIGKILL);
            }
            struct timespec pause_ts = {0, 2 * 1000 * 1000};
            nanosleep(&pause_ts, NULL);
        }
    }
    long long wall = now_ns() - start;
    if (got < 0) {
        perror("measure: wait4");
        return 2;
    }
    int code = WIFSIGNALED(status) ? -WTERMSIG(status) : WEXITSTATUS(status);
    dprintf(report_fd, "%d %lld %lld %lld %ld\n", code, wall,
            (long long)usage.ru_utime.tv_sec * 1000000LL + usage.ru_utime.tv_usec,
            (long long)usage.ru_stime.tv_sec * 1000000LL + usage.ru_stime.tv_usec,
            usage.ru_maxrss);
    return 0;
}
