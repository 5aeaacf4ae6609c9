/* manymaps N: hold N small mappings (separate VMAs), each with one page
 * resident: half anonymous (one region of pages whose protections
 * alternate, so that no two neighbours merge), half single pages of this
 * program's own executable file, mapped one by one.  A stand-in for the
 * big processes (browsers, JVMs) whose full smaps is thousands of blocks.
 *
 * Prints "ready PID" and waits; see common.h.
 */
#include <fcntl.h>

#include "common.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: manymaps N\n");
        return 2;
    }
    long count = parse_count(argv[1], "N", 60000);
    helper_start();
    long page = sysconf(_SC_PAGESIZE);
    long anonymous = count / 2;
    if (anonymous) {
        char *region = mmap(NULL, anonymous * page, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (region == MAP_FAILED)
            die("mmap");
        memset(region, 0x5a, anonymous * page);
        for (long i = 1; i < anonymous; i += 2)
            if (mprotect(region + i * page, page, PROT_READ) != 0)
                die("mprotect");
    }
    int fd = open("/proc/self/exe", O_RDONLY);
    if (fd < 0)
        die("open");
    off_t size = lseek(fd, 0, SEEK_END);
    long pages = size / page;
    if (pages < 1) {
        fprintf(stderr, "executable too small\n");
        return 2;
    }
    for (long i = anonymous; i < count; i++) {
        /* Pages in address order are not in file order: no merging. */
        volatile char *mapped = mmap(NULL, page, PROT_READ, MAP_PRIVATE, fd,
                                     (i % pages) * page);
        if (mapped == MAP_FAILED)
            die("mmap file");
        (void)mapped[0];
    }
    close(fd);
    report_ready();
    return wait_for_stop_and_exit();
}
