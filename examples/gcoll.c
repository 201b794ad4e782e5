/*
 * gcoll.c — the seed program: Go's gColl.go from "Mastering Go", ported to
 * cgc. It prints the collector's statistics, allocates ten 50 000 000-byte
 * buffers and ten 100 000 000-byte buffers that are dropped at once, and
 * prints the statistics after each batch, in the Go program's format.
 *
 * Run it with CGC_DEBUG=gctrace=1 to see one line per collection, as
 * GODEBUG=gctrace=1 shows for the Go original (examples/gcoll.go is the
 * same algorithm in Go; README compares the two outputs).
 */
#include <cgc.h>
#include <stdio.h>
#include <stdlib.h>

static void print_stats(void)
{
    gc_stats mem;
    gc_read_stats(&mem);
    printf("mem.Alloc: %llu\n", (unsigned long long)mem.alloc);
    printf("mem.TotalAlloc: %llu\n", (unsigned long long)mem.total_alloc);
    printf("mem.HeapAlloc: %llu\n", (unsigned long long)mem.heap_alloc);
    printf("mem.NumGC: %u\n", mem.num_gc);
    printf("-----\n");
    fflush(stdout);
}

static void allocate_batch(size_t size)
{
    for (int i = 0; i < 10; i++) {
        /* A byte slice in Go: pointer-free, so it is never scanned. */
        char *s = gc_alloc_noscan(size);
        if (s == NULL) {
            fprintf(stderr, "Operation failed!\n");
            exit(1);
        }
    }
}

int main(void)
{
    gc_init();
    print_stats();
    allocate_batch(50000000);
    print_stats();
    allocate_batch(100000000);
    print_stats();
    return 0;
}
