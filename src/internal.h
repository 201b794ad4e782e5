/*
 * internal.h — definitions shared by every module of the library: visibility,
 * branch hints, layout constants and the object kinds.
 *
 * Layout (design §4): 8 KiB pages, 64 MiB arenas aligned to their size, an
 * arena index covering a 48-bit address space.
 */
#ifndef CGC_INTERNAL_H
#define CGC_INTERNAL_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CGC_API      __attribute__((visibility("default")))
#define CGC_NOINLINE __attribute__((noinline))
#define likely(x)    __builtin_expect(!!(x), 1)
#define unlikely(x)  __builtin_expect(!!(x), 0)

/* Every static of the library is defined with CGC_STATE: the section's
 * linker-made bounds let globals.c leave our own state out of the scan of
 * the program's data, also when cgc is linked statically into it. */
#define CGC_STATE __attribute__((section("cgc_state")))

#define PAGE_SHIFT          13
#define PAGE_SIZE           ((size_t)1 << PAGE_SHIFT)
#define ARENA_SHIFT         26
#define ARENA_SIZE          ((size_t)1 << ARENA_SHIFT)
#define PAGES_PER_ARENA     (ARENA_SIZE / PAGE_SIZE)
#define ADDRESS_BITS        48
#define ARENA_INDEX_ENTRIES ((size_t)1 << (ADDRESS_BITS - ARENA_SHIFT))

/* The largest request we try to satisfy: anything above cannot be mapped on a
 * 48-bit address space anyway, and keeping it far below SIZE_MAX means that
 * rounding a size up to pages never overflows. */
#define MAX_ALLOC_SIZE ((size_t)1 << 46)

static_assert(PAGE_SIZE * PAGES_PER_ARENA == ARENA_SIZE, "arena is pages");
static_assert(sizeof(void *) == 8, "cgc supports 64-bit targets only");

/* How an object is scanned. The kind is part of the span class, so every span
 * holds objects of one kind. */
enum object_kind {
    KIND_SCAN = 0,   /* conservative: every aligned word */
    KIND_NOSCAN = 1, /* never scanned */
    KIND_TYPED = 2,  /* precise: the pointer offsets of a gc_type */
    NUM_KINDS = 3,
};

/* A precise layout (the public gc_type). Immortal once created. */
struct gc_type {
    struct gc_type *next_created; /* list of every descriptor (immortal) */
    size_t size;
    size_t n_ptrs;
    size_t ptr_offsets[]; /* sorted, multiples of 8, < size */
};

static inline size_t round_up(size_t n, size_t to)
{
    return (n + to - 1) & ~(to - 1);
}

#endif
