// C interface of the emulator for cgo.
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// emu_alloc returns n bytes filled with 0xff (a NaN in every float) and
// followed by an inaccessible page, or 0.
uintptr_t emu_alloc(size_t n);
// emu_free releases an emu_alloc'ed block of n bytes.
void emu_free(uintptr_t p, size_t n);
// emu_copy_in copies n bytes of host memory to an emulated device address.
void emu_copy_in(uintptr_t dst, const void* src, size_t n);
// emu_copy_out copies n bytes from an emulated device address to host memory.
void emu_copy_out(void* dst, uintptr_t src, size_t n);
// emu_launch runs kernel name over grid x block; args holds one 8-byte slot
// per parameter. With reversed != 0 the blocks run from the last to the
// first and each block's threads are resumed from the last to the first.
// It returns 0, or -1 with a message in err.
int emu_launch(const char* name, int gx, int gy, int gz, int bx, int by, int bz, const uint64_t* args, int nargs,
               int reversed, char* err, int errlen);

#ifdef __cplusplus
}
#endif
