//go:build gpuemu

// The emulator: its memory and launches, and the kernels of loss.cu and of
// the self-tests compiled for the CPU with emu.h (the other families are
// translation units of their own: emu_*.cpp).
#include "loss_cu.h"  // a link to ../kernels/cuda/loss.cu, so that go build sees its changes
#include "selftest.h"

#include <pthread.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "emu_api.h"

namespace {

size_t pageSize() { return (size_t)sysconf(_SC_PAGESIZE); }

// span returns the pages an n-byte block takes, its guard page included.
size_t span(size_t n) {
  const size_t ps = pageSize();
  return (n + ps - 1) / ps * ps + ps;
}

}  // namespace

extern "C" uintptr_t emu_alloc(size_t n) {
  const size_t total = span(n);
  void* base = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) return 0;
  char* guard = (char*)base + total - pageSize();
  if (mprotect(guard, pageSize(), PROT_NONE) != 0) {
    munmap(base, total);
    return 0;
  }
  // The block ends at the guard page, less the rounding to 16 bytes that
  // keeps float4 loads aligned.
  char* p = guard - ((n + 15) / 16 * 16);
  memset(p, 0xff, guard - p);
  return (uintptr_t)p;
}

extern "C" void emu_free(uintptr_t p, size_t n) {
  const size_t total = span(n);
  const uintptr_t base = (p + ((n + 15) / 16 * 16)) + pageSize() - total;
  munmap((void*)base, total);
}

extern "C" void emu_copy_in(uintptr_t dst, const void* src, size_t n) { memcpy((void*)dst, src, n); }

extern "C" void emu_copy_out(void* dst, uintptr_t src, size_t n) { memcpy(dst, (const void*)src, n); }

extern "C" int emu_launch(const char* name, int gx, int gy, int gz, int bx, int by, int bz, const uint64_t* args,
                          int nargs, int reversed, char* err, int errlen) {
  auto it = emu::registry().find(name);
  if (it == emu::registry().end()) {
    snprintf(err, errlen, "no kernel named %s", name);
    return -1;
  }
  if (bx * by * bz < 1 || bx * by * bz > 1024 || gx < 1 || gy < 1 || gz < 1) {
    snprintf(err, errlen, "bad launch %dx%dx%d blocks of %dx%dx%d threads", gx, gy, gz, bx, by, bz);
    return -1;
  }
  std::vector<uint64_t> vals(args, args + nargs);
  std::vector<void*> ptrs(nargs);
  for (int i = 0; i < nargs; i++) ptrs[i] = &vals[i];
  // Fibers switch with swapcontext; keep the Go runtime's signals away
  // from their stacks while they run.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  emu::Block block;
  emu::gridDim_ = dim3{(unsigned)gx, (unsigned)gy, (unsigned)gz};
  emu::blockDim_ = dim3{(unsigned)bx, (unsigned)by, (unsigned)bz};
  const emu::Thunk& thunk = it->second;
  void** argv = ptrs.data();
  block.body = [&thunk, argv] { thunk(argv); };
  const char* msg = nullptr;
  emu::reversed = reversed != 0;
  const long long blocks = (long long)gx * gy * gz;
  for (long long k = 0; k < blocks && msg == nullptr; k++) {
    const long long i = emu::reversed ? blocks - 1 - k : k;
    emu::blockIdx_ = dim3{(unsigned)(i % gx), (unsigned)(i / gx % gy), (unsigned)(i / gx / gy)};
    msg = emu::runBlock(block, bx * by * bz);
  }
  for (auto& f : block.fibers) delete[] f.stack;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (msg != nullptr) {
    snprintf(err, errlen, "%s: %s", name, msg);
    return -1;
  }
  return 0;
}
