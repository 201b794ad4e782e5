// gcoll.go — the Go side of examples/gcoll.c, for comparing the two
// collectors: the same steps as the C port of Mastering Go's gColl.go.
// It prints the runtime's statistics, allocates ten 50 000 000-byte and
// then ten 100 000 000-byte slices that are dropped at once, and prints the
// statistics after each batch.
//
//	GODEBUG=gctrace=1 go run examples/gcoll.go
//
// Not part of the build: CMake and CI do not need Go.
package main

import (
	"fmt"
	"os"
	"runtime"
)

func printStats() {
	var mem runtime.MemStats
	runtime.ReadMemStats(&mem)
	fmt.Println("mem.Alloc:", mem.Alloc)
	fmt.Println("mem.TotalAlloc:", mem.TotalAlloc)
	fmt.Println("mem.HeapAlloc:", mem.HeapAlloc)
	fmt.Println("mem.NumGC:", mem.NumGC)
	fmt.Println("-----")
}

func allocateBatch(size int) {
	for i := 0; i < 10; i++ {
		// A []byte holds no pointers: the C port uses gc_alloc_noscan.
		s := make([]byte, size)
		if s == nil {
			fmt.Fprintln(os.Stderr, "Operation failed!")
			os.Exit(1)
		}
	}
}

func main() {
	printStats()
	allocateBatch(50000000)
	printStats()
	allocateBatch(100000000)
	printStats()
}
