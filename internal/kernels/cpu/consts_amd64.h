// Constants of the vector exp and log in ops_amd64.s.
// Each is one float32 or int32 value repeated in all 8 lanes of a YMM word.

// negInf: minus infinity
DATA negInf<>+0(SB)/4, $0xff800000
DATA negInf<>+4(SB)/4, $0xff800000
DATA negInf<>+8(SB)/4, $0xff800000
DATA negInf<>+12(SB)/4, $0xff800000
DATA negInf<>+16(SB)/4, $0xff800000
DATA negInf<>+20(SB)/4, $0xff800000
DATA negInf<>+24(SB)/4, $0xff800000
DATA negInf<>+28(SB)/4, $0xff800000
GLOBL negInf<>(SB), RODATA|NOPTR, $32

// one: 1
DATA one<>+0(SB)/4, $0x3f800000
DATA one<>+4(SB)/4, $0x3f800000
DATA one<>+8(SB)/4, $0x3f800000
DATA one<>+12(SB)/4, $0x3f800000
DATA one<>+16(SB)/4, $0x3f800000
DATA one<>+20(SB)/4, $0x3f800000
DATA one<>+24(SB)/4, $0x3f800000
DATA one<>+28(SB)/4, $0x3f800000
GLOBL one<>(SB), RODATA|NOPTR, $32

// absMask: clears the sign bit
DATA absMask<>+0(SB)/4, $0x7fffffff
DATA absMask<>+4(SB)/4, $0x7fffffff
DATA absMask<>+8(SB)/4, $0x7fffffff
DATA absMask<>+12(SB)/4, $0x7fffffff
DATA absMask<>+16(SB)/4, $0x7fffffff
DATA absMask<>+20(SB)/4, $0x7fffffff
DATA absMask<>+24(SB)/4, $0x7fffffff
DATA absMask<>+28(SB)/4, $0x7fffffff
GLOBL absMask<>(SB), RODATA|NOPTR, $32

// signBit: the sign bit
DATA signBit<>+0(SB)/4, $0x80000000
DATA signBit<>+4(SB)/4, $0x80000000
DATA signBit<>+8(SB)/4, $0x80000000
DATA signBit<>+12(SB)/4, $0x80000000
DATA signBit<>+16(SB)/4, $0x80000000
DATA signBit<>+20(SB)/4, $0x80000000
DATA signBit<>+24(SB)/4, $0x80000000
DATA signBit<>+28(SB)/4, $0x80000000
GLOBL signBit<>(SB), RODATA|NOPTR, $32

// expHi: exp clamps its argument to [expLo, expHi]
DATA expHi<>+0(SB)/4, $0x42b00000
DATA expHi<>+4(SB)/4, $0x42b00000
DATA expHi<>+8(SB)/4, $0x42b00000
DATA expHi<>+12(SB)/4, $0x42b00000
DATA expHi<>+16(SB)/4, $0x42b00000
DATA expHi<>+20(SB)/4, $0x42b00000
DATA expHi<>+24(SB)/4, $0x42b00000
DATA expHi<>+28(SB)/4, $0x42b00000
GLOBL expHi<>(SB), RODATA|NOPTR, $32

// expLo: and returns 0 below expLo
DATA expLo<>+0(SB)/4, $0xc2ae0000
DATA expLo<>+4(SB)/4, $0xc2ae0000
DATA expLo<>+8(SB)/4, $0xc2ae0000
DATA expLo<>+12(SB)/4, $0xc2ae0000
DATA expLo<>+16(SB)/4, $0xc2ae0000
DATA expLo<>+20(SB)/4, $0xc2ae0000
DATA expLo<>+24(SB)/4, $0xc2ae0000
DATA expLo<>+28(SB)/4, $0xc2ae0000
GLOBL expLo<>(SB), RODATA|NOPTR, $32

// log2e: log2(e)
DATA log2e<>+0(SB)/4, $0x3fb8aa3b
DATA log2e<>+4(SB)/4, $0x3fb8aa3b
DATA log2e<>+8(SB)/4, $0x3fb8aa3b
DATA log2e<>+12(SB)/4, $0x3fb8aa3b
DATA log2e<>+16(SB)/4, $0x3fb8aa3b
DATA log2e<>+20(SB)/4, $0x3fb8aa3b
DATA log2e<>+24(SB)/4, $0x3fb8aa3b
DATA log2e<>+28(SB)/4, $0x3fb8aa3b
GLOBL log2e<>(SB), RODATA|NOPTR, $32

// ln2Hi: ln 2 = ln2Hi + ln2Lo (Cody-Waite split)
DATA ln2Hi<>+0(SB)/4, $0x3f318000
DATA ln2Hi<>+4(SB)/4, $0x3f318000
DATA ln2Hi<>+8(SB)/4, $0x3f318000
DATA ln2Hi<>+12(SB)/4, $0x3f318000
DATA ln2Hi<>+16(SB)/4, $0x3f318000
DATA ln2Hi<>+20(SB)/4, $0x3f318000
DATA ln2Hi<>+24(SB)/4, $0x3f318000
DATA ln2Hi<>+28(SB)/4, $0x3f318000
GLOBL ln2Hi<>(SB), RODATA|NOPTR, $32

DATA ln2Lo<>+0(SB)/4, $0xb95e8083
DATA ln2Lo<>+4(SB)/4, $0xb95e8083
DATA ln2Lo<>+8(SB)/4, $0xb95e8083
DATA ln2Lo<>+12(SB)/4, $0xb95e8083
DATA ln2Lo<>+16(SB)/4, $0xb95e8083
DATA ln2Lo<>+20(SB)/4, $0xb95e8083
DATA ln2Lo<>+24(SB)/4, $0xb95e8083
DATA ln2Lo<>+28(SB)/4, $0xb95e8083
GLOBL ln2Lo<>(SB), RODATA|NOPTR, $32

// expP0: minimax polynomial for exp on [-ln2/2, ln2/2]
DATA expP0<>+0(SB)/4, $0x39506967
DATA expP0<>+4(SB)/4, $0x39506967
DATA expP0<>+8(SB)/4, $0x39506967
DATA expP0<>+12(SB)/4, $0x39506967
DATA expP0<>+16(SB)/4, $0x39506967
DATA expP0<>+20(SB)/4, $0x39506967
DATA expP0<>+24(SB)/4, $0x39506967
DATA expP0<>+28(SB)/4, $0x39506967
GLOBL expP0<>(SB), RODATA|NOPTR, $32

DATA expP1<>+0(SB)/4, $0x3ab743ce
DATA expP1<>+4(SB)/4, $0x3ab743ce
DATA expP1<>+8(SB)/4, $0x3ab743ce
DATA expP1<>+12(SB)/4, $0x3ab743ce
DATA expP1<>+16(SB)/4, $0x3ab743ce
DATA expP1<>+20(SB)/4, $0x3ab743ce
DATA expP1<>+24(SB)/4, $0x3ab743ce
DATA expP1<>+28(SB)/4, $0x3ab743ce
GLOBL expP1<>(SB), RODATA|NOPTR, $32

DATA expP2<>+0(SB)/4, $0x3c088908
DATA expP2<>+4(SB)/4, $0x3c088908
DATA expP2<>+8(SB)/4, $0x3c088908
DATA expP2<>+12(SB)/4, $0x3c088908
DATA expP2<>+16(SB)/4, $0x3c088908
DATA expP2<>+20(SB)/4, $0x3c088908
DATA expP2<>+24(SB)/4, $0x3c088908
DATA expP2<>+28(SB)/4, $0x3c088908
GLOBL expP2<>(SB), RODATA|NOPTR, $32

DATA expP3<>+0(SB)/4, $0x3d2aa9c1
DATA expP3<>+4(SB)/4, $0x3d2aa9c1
DATA expP3<>+8(SB)/4, $0x3d2aa9c1
DATA expP3<>+12(SB)/4, $0x3d2aa9c1
DATA expP3<>+16(SB)/4, $0x3d2aa9c1
DATA expP3<>+20(SB)/4, $0x3d2aa9c1
DATA expP3<>+24(SB)/4, $0x3d2aa9c1
DATA expP3<>+28(SB)/4, $0x3d2aa9c1
GLOBL expP3<>(SB), RODATA|NOPTR, $32

DATA expP4<>+0(SB)/4, $0x3e2aaaaa
DATA expP4<>+4(SB)/4, $0x3e2aaaaa
DATA expP4<>+8(SB)/4, $0x3e2aaaaa
DATA expP4<>+12(SB)/4, $0x3e2aaaaa
DATA expP4<>+16(SB)/4, $0x3e2aaaaa
DATA expP4<>+20(SB)/4, $0x3e2aaaaa
DATA expP4<>+24(SB)/4, $0x3e2aaaaa
DATA expP4<>+28(SB)/4, $0x3e2aaaaa
GLOBL expP4<>(SB), RODATA|NOPTR, $32

DATA expP5<>+0(SB)/4, $0x3f000000
DATA expP5<>+4(SB)/4, $0x3f000000
DATA expP5<>+8(SB)/4, $0x3f000000
DATA expP5<>+12(SB)/4, $0x3f000000
DATA expP5<>+16(SB)/4, $0x3f000000
DATA expP5<>+20(SB)/4, $0x3f000000
DATA expP5<>+24(SB)/4, $0x3f000000
DATA expP5<>+28(SB)/4, $0x3f000000
GLOBL expP5<>(SB), RODATA|NOPTR, $32

// bias127: float32 exponent bias
DATA bias127<>+0(SB)/4, $0x0000007f
DATA bias127<>+4(SB)/4, $0x0000007f
DATA bias127<>+8(SB)/4, $0x0000007f
DATA bias127<>+12(SB)/4, $0x0000007f
DATA bias127<>+16(SB)/4, $0x0000007f
DATA bias127<>+20(SB)/4, $0x0000007f
DATA bias127<>+24(SB)/4, $0x0000007f
DATA bias127<>+28(SB)/4, $0x0000007f
GLOBL bias127<>(SB), RODATA|NOPTR, $32

// bias126: exponent bias for a mantissa in [0.5, 1)
DATA bias126<>+0(SB)/4, $0x0000007e
DATA bias126<>+4(SB)/4, $0x0000007e
DATA bias126<>+8(SB)/4, $0x0000007e
DATA bias126<>+12(SB)/4, $0x0000007e
DATA bias126<>+16(SB)/4, $0x0000007e
DATA bias126<>+20(SB)/4, $0x0000007e
DATA bias126<>+24(SB)/4, $0x0000007e
DATA bias126<>+28(SB)/4, $0x0000007e
GLOBL bias126<>(SB), RODATA|NOPTR, $32

// mantMask: mantissa bits
DATA mantMask<>+0(SB)/4, $0x007fffff
DATA mantMask<>+4(SB)/4, $0x007fffff
DATA mantMask<>+8(SB)/4, $0x007fffff
DATA mantMask<>+12(SB)/4, $0x007fffff
DATA mantMask<>+16(SB)/4, $0x007fffff
DATA mantMask<>+20(SB)/4, $0x007fffff
DATA mantMask<>+24(SB)/4, $0x007fffff
DATA mantMask<>+28(SB)/4, $0x007fffff
GLOBL mantMask<>(SB), RODATA|NOPTR, $32

// half: 0.5
DATA half<>+0(SB)/4, $0x3f000000
DATA half<>+4(SB)/4, $0x3f000000
DATA half<>+8(SB)/4, $0x3f000000
DATA half<>+12(SB)/4, $0x3f000000
DATA half<>+16(SB)/4, $0x3f000000
DATA half<>+20(SB)/4, $0x3f000000
DATA half<>+24(SB)/4, $0x3f000000
DATA half<>+28(SB)/4, $0x3f000000
GLOBL half<>(SB), RODATA|NOPTR, $32

// sqrtHalf: sqrt(1/2)
DATA sqrtHalf<>+0(SB)/4, $0x3f3504f3
DATA sqrtHalf<>+4(SB)/4, $0x3f3504f3
DATA sqrtHalf<>+8(SB)/4, $0x3f3504f3
DATA sqrtHalf<>+12(SB)/4, $0x3f3504f3
DATA sqrtHalf<>+16(SB)/4, $0x3f3504f3
DATA sqrtHalf<>+20(SB)/4, $0x3f3504f3
DATA sqrtHalf<>+24(SB)/4, $0x3f3504f3
DATA sqrtHalf<>+28(SB)/4, $0x3f3504f3
GLOBL sqrtHalf<>(SB), RODATA|NOPTR, $32

// negHalfC: -0.5
DATA negHalfC<>+0(SB)/4, $0xbf000000
DATA negHalfC<>+4(SB)/4, $0xbf000000
DATA negHalfC<>+8(SB)/4, $0xbf000000
DATA negHalfC<>+12(SB)/4, $0xbf000000
DATA negHalfC<>+16(SB)/4, $0xbf000000
DATA negHalfC<>+20(SB)/4, $0xbf000000
DATA negHalfC<>+24(SB)/4, $0xbf000000
DATA negHalfC<>+28(SB)/4, $0xbf000000
GLOBL negHalfC<>(SB), RODATA|NOPTR, $32

// logP0: polynomial for log(1+x) on [sqrt(1/2)-1, sqrt(2)-1]
DATA logP0<>+0(SB)/4, $0x3d9021bb
DATA logP0<>+4(SB)/4, $0x3d9021bb
DATA logP0<>+8(SB)/4, $0x3d9021bb
DATA logP0<>+12(SB)/4, $0x3d9021bb
DATA logP0<>+16(SB)/4, $0x3d9021bb
DATA logP0<>+20(SB)/4, $0x3d9021bb
DATA logP0<>+24(SB)/4, $0x3d9021bb
DATA logP0<>+28(SB)/4, $0x3d9021bb
GLOBL logP0<>(SB), RODATA|NOPTR, $32

DATA logP1<>+0(SB)/4, $0xbdebd1b8
DATA logP1<>+4(SB)/4, $0xbdebd1b8
DATA logP1<>+8(SB)/4, $0xbdebd1b8
DATA logP1<>+12(SB)/4, $0xbdebd1b8
DATA logP1<>+16(SB)/4, $0xbdebd1b8
DATA logP1<>+20(SB)/4, $0xbdebd1b8
DATA logP1<>+24(SB)/4, $0xbdebd1b8
DATA logP1<>+28(SB)/4, $0xbdebd1b8
GLOBL logP1<>(SB), RODATA|NOPTR, $32

DATA logP2<>+0(SB)/4, $0x3def251a
DATA logP2<>+4(SB)/4, $0x3def251a
DATA logP2<>+8(SB)/4, $0x3def251a
DATA logP2<>+12(SB)/4, $0x3def251a
DATA logP2<>+16(SB)/4, $0x3def251a
DATA logP2<>+20(SB)/4, $0x3def251a
DATA logP2<>+24(SB)/4, $0x3def251a
DATA logP2<>+28(SB)/4, $0x3def251a
GLOBL logP2<>(SB), RODATA|NOPTR, $32

DATA logP3<>+0(SB)/4, $0xbdfe5d4f
DATA logP3<>+4(SB)/4, $0xbdfe5d4f
DATA logP3<>+8(SB)/4, $0xbdfe5d4f
DATA logP3<>+12(SB)/4, $0xbdfe5d4f
DATA logP3<>+16(SB)/4, $0xbdfe5d4f
DATA logP3<>+20(SB)/4, $0xbdfe5d4f
DATA logP3<>+24(SB)/4, $0xbdfe5d4f
DATA logP3<>+28(SB)/4, $0xbdfe5d4f
GLOBL logP3<>(SB), RODATA|NOPTR, $32

DATA logP4<>+0(SB)/4, $0x3e11e9bf
DATA logP4<>+4(SB)/4, $0x3e11e9bf
DATA logP4<>+8(SB)/4, $0x3e11e9bf
DATA logP4<>+12(SB)/4, $0x3e11e9bf
DATA logP4<>+16(SB)/4, $0x3e11e9bf
DATA logP4<>+20(SB)/4, $0x3e11e9bf
DATA logP4<>+24(SB)/4, $0x3e11e9bf
DATA logP4<>+28(SB)/4, $0x3e11e9bf
GLOBL logP4<>(SB), RODATA|NOPTR, $32

DATA logP5<>+0(SB)/4, $0xbe2aae50
DATA logP5<>+4(SB)/4, $0xbe2aae50
DATA logP5<>+8(SB)/4, $0xbe2aae50
DATA logP5<>+12(SB)/4, $0xbe2aae50
DATA logP5<>+16(SB)/4, $0xbe2aae50
DATA logP5<>+20(SB)/4, $0xbe2aae50
DATA logP5<>+24(SB)/4, $0xbe2aae50
DATA logP5<>+28(SB)/4, $0xbe2aae50
GLOBL logP5<>(SB), RODATA|NOPTR, $32

DATA logP6<>+0(SB)/4, $0x3e4cceac
DATA logP6<>+4(SB)/4, $0x3e4cceac
DATA logP6<>+8(SB)/4, $0x3e4cceac
DATA logP6<>+12(SB)/4, $0x3e4cceac
DATA logP6<>+16(SB)/4, $0x3e4cceac
DATA logP6<>+20(SB)/4, $0x3e4cceac
DATA logP6<>+24(SB)/4, $0x3e4cceac
DATA logP6<>+28(SB)/4, $0x3e4cceac
GLOBL logP6<>(SB), RODATA|NOPTR, $32

DATA logP7<>+0(SB)/4, $0xbe7ffffc
DATA logP7<>+4(SB)/4, $0xbe7ffffc
DATA logP7<>+8(SB)/4, $0xbe7ffffc
DATA logP7<>+12(SB)/4, $0xbe7ffffc
DATA logP7<>+16(SB)/4, $0xbe7ffffc
DATA logP7<>+20(SB)/4, $0xbe7ffffc
DATA logP7<>+24(SB)/4, $0xbe7ffffc
DATA logP7<>+28(SB)/4, $0xbe7ffffc
GLOBL logP7<>(SB), RODATA|NOPTR, $32

DATA logP8<>+0(SB)/4, $0x3eaaaaaa
DATA logP8<>+4(SB)/4, $0x3eaaaaaa
DATA logP8<>+8(SB)/4, $0x3eaaaaaa
DATA logP8<>+12(SB)/4, $0x3eaaaaaa
DATA logP8<>+16(SB)/4, $0x3eaaaaaa
DATA logP8<>+20(SB)/4, $0x3eaaaaaa
DATA logP8<>+24(SB)/4, $0x3eaaaaaa
DATA logP8<>+28(SB)/4, $0x3eaaaaaa
GLOBL logP8<>(SB), RODATA|NOPTR, $32
