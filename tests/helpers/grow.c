/* grow PAGES: a process whose private memory grows by a known amount on
 * request.  Each SIGUSR1 maps PAGES more pages of private anonymous memory
 * and writes every one of them, so that they are resident and counted in
 * Private (and Pss) exactly, then prints "grown TOTAL" (the pages grown so
 * far).  Nothing else in the process changes: statically linked, it shares
 * no page with any other process, so its Shared stays put too.
 *
 * Prints "ready PID" and waits; see common.h.
 */
#include "common.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: grow PAGES\n");
        return 2;
    }
    long pages = parse_count(argv[1], "PAGES", 1L << 20);
    long page_size = sysconf(_SC_PAGESIZE);
    helper_start();
    report_ready();
    long total = 0;
    while (wait_signal() == SIGUSR1) {
        if (pages) {
            size_t size = (size_t)pages * (size_t)page_size;
            char *memory = mmap(NULL, size, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (memory == MAP_FAILED)
                die("mmap");
            memset(memory, 0x5a, size);
        }
        total += pages;
        printf("grown %ld\n", total);
        if (fflush(stdout) != 0)
            die("fflush");
    }
    return stop_children();
}
