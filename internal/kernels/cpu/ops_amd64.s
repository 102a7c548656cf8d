//go:build amd64 && !purego

// AVX2 + FMA kernels for the fused losses. Each has a portable twin in
// tile.go with the same semantics; ops_amd64_test.go checks one against the
// other. Register use follows the Go ABI0 convention: arguments on the stack,
// every general and vector register free, except that BP, R14 and R15 are
// left alone.

#include "textflag.h"
#include "consts_amd64.h"

// EXP sets X = exp(X) for 8 float32 lanes, within 2 ulp; 0 below -87, and
// X is clamped to 88 above. T1, T2 and M are clobbered.
#define EXP(X, T1, T2, M) \
	VCMPPS       $1, expLo<>(SB), X, M; \
	VMINPS       expHi<>(SB), X, X; \
	VMAXPS       expLo<>(SB), X, X; \
	VMULPS       log2e<>(SB), X, T1; \
	VROUNDPS     $0, T1, T1; \
	VFNMADD231PS ln2Hi<>(SB), T1, X; \
	VFNMADD231PS ln2Lo<>(SB), T1, X; \
	VMOVUPS      expP0<>(SB), T2; \
	VFMADD213PS  expP1<>(SB), X, T2; \
	VFMADD213PS  expP2<>(SB), X, T2; \
	VFMADD213PS  expP3<>(SB), X, T2; \
	VFMADD213PS  expP4<>(SB), X, T2; \
	VFMADD213PS  expP5<>(SB), X, T2; \
	VFMADD213PS  one<>(SB), X, T2; \
	VFMADD213PS  one<>(SB), X, T2; \
	VCVTPS2DQ    T1, T1; \
	VPADDD       bias127<>(SB), T1, T1; \
	VPSLLD       $23, T1, T1; \
	VMULPS       T1, T2, X; \
	VANDNPS      X, M, X

// LOG sets X = log(X) for 8 positive, normal float32 lanes, within 2 ulp.
// E, M, T1 and T2 are clobbered.
#define LOG(X, E, M, T1, T2) \
	VPSRLD       $23, X, E; \
	VPSUBD       bias126<>(SB), E, E; \
	VANDPS       mantMask<>(SB), X, X; \
	VORPS        half<>(SB), X, X; \
	VCMPPS       $1, sqrtHalf<>(SB), X, M; \
	VPADDD       M, E, E; \
	VANDPS       X, M, T1; \
	VADDPS       T1, X, X; \
	VSUBPS       one<>(SB), X, X; \
	VCVTDQ2PS    E, E; \
	VMULPS       X, X, T1; \
	VMOVUPS      logP0<>(SB), T2; \
	VFMADD213PS  logP1<>(SB), X, T2; \
	VFMADD213PS  logP2<>(SB), X, T2; \
	VFMADD213PS  logP3<>(SB), X, T2; \
	VFMADD213PS  logP4<>(SB), X, T2; \
	VFMADD213PS  logP5<>(SB), X, T2; \
	VFMADD213PS  logP6<>(SB), X, T2; \
	VFMADD213PS  logP7<>(SB), X, T2; \
	VFMADD213PS  logP8<>(SB), X, T2; \
	VMULPS       X, T2, T2; \
	VMULPS       T1, T2, T2; \
	VFMADD231PS  ln2Lo<>(SB), E, T2; \
	VFMADD231PS  negHalfC<>(SB), T1, T2; \
	VADDPS       T2, X, X; \
	VFMADD231PS  ln2Hi<>(SB), E, X

// HMAX leaves the largest lane of Y (X is its low half) in lane 0 of X.
#define HMAX(Y, X, TY, TX) \
	VEXTRACTF128 $1, Y, TX; \
	VMAXPS       TX, X, X; \
	VPERMILPS    $0x4e, X, TX; \
	VMAXPS       TX, X, X; \
	VPERMILPS    $0xb1, X, TX; \
	VMAXPS       TX, X, X

// HSUM leaves the sum of the lanes of Y (X is its low half) in lane 0 of X.
#define HSUM(Y, X, TY, TX) \
	VEXTRACTF128 $1, Y, TX; \
	VADDPS       TX, X, X; \
	VPERMILPS    $0x4e, X, TX; \
	VADDPS       TX, X, X; \
	VPERMILPS    $0xb1, X, TX; \
	VADDPS       TX, X, X

// The 6x16 micro-kernels' accumulators are Y0-Y11: row i in Y(2i), Y(2i+1).
// ZERO6x16 clears them; SCALE6x16 multiplies them by Y12; ADDC6x16 adds C
// and STOREC6x16 stores them to C, whose rows are at CX + {0, 1, 2, 3, 4, 5}
// R10 (with SI = 3 R10 and DI = 5 R10).
#define ZERO6x16 \
	VXORPS Y0, Y0, Y0; \
	VXORPS Y1, Y1, Y1; \
	VXORPS Y2, Y2, Y2; \
	VXORPS Y3, Y3, Y3; \
	VXORPS Y4, Y4, Y4; \
	VXORPS Y5, Y5, Y5; \
	VXORPS Y6, Y6, Y6; \
	VXORPS Y7, Y7, Y7; \
	VXORPS Y8, Y8, Y8; \
	VXORPS Y9, Y9, Y9; \
	VXORPS Y10, Y10, Y10; \
	VXORPS Y11, Y11, Y11

#define SCALE6x16 \
	VMULPS Y12, Y0, Y0; \
	VMULPS Y12, Y1, Y1; \
	VMULPS Y12, Y2, Y2; \
	VMULPS Y12, Y3, Y3; \
	VMULPS Y12, Y4, Y4; \
	VMULPS Y12, Y5, Y5; \
	VMULPS Y12, Y6, Y6; \
	VMULPS Y12, Y7, Y7; \
	VMULPS Y12, Y8, Y8; \
	VMULPS Y12, Y9, Y9; \
	VMULPS Y12, Y10, Y10; \
	VMULPS Y12, Y11, Y11

#define ADDC6x16 \
	VADDPS (CX), Y0, Y0; \
	VADDPS 32(CX), Y1, Y1; \
	VADDPS (CX)(R10*1), Y2, Y2; \
	VADDPS 32(CX)(R10*1), Y3, Y3; \
	VADDPS (CX)(R10*2), Y4, Y4; \
	VADDPS 32(CX)(R10*2), Y5, Y5; \
	VADDPS (CX)(SI*1), Y6, Y6; \
	VADDPS 32(CX)(SI*1), Y7, Y7; \
	VADDPS (CX)(R10*4), Y8, Y8; \
	VADDPS 32(CX)(R10*4), Y9, Y9; \
	VADDPS (CX)(DI*1), Y10, Y10; \
	VADDPS 32(CX)(DI*1), Y11, Y11

#define STOREC6x16 \
	VMOVUPS Y0, (CX); \
	VMOVUPS Y1, 32(CX); \
	VMOVUPS Y2, (CX)(R10*1); \
	VMOVUPS Y3, 32(CX)(R10*1); \
	VMOVUPS Y4, (CX)(R10*2); \
	VMOVUPS Y5, 32(CX)(R10*2); \
	VMOVUPS Y6, (CX)(SI*1); \
	VMOVUPS Y7, 32(CX)(SI*1); \
	VMOVUPS Y8, (CX)(R10*4); \
	VMOVUPS Y9, 32(CX)(R10*4); \
	VMOVUPS Y10, (CX)(DI*1); \
	VMOVUPS Y11, 32(CX)(DI*1)

// KSTEP is one k of the 6x16 micro-kernel: 6 broadcasts of A's column
// (rows at SI + {0,1,2,3,4,5} lda) times B's 16-wide row at DI.
#define KSTEP \
	VMOVUPS      (DI), Y12; \
	VMOVUPS      32(DI), Y13; \
	VBROADCASTSS (SI), Y14; \
	VFMADD231PS  Y12, Y14, Y0; \
	VFMADD231PS  Y13, Y14, Y1; \
	VBROADCASTSS (SI)(R8*1), Y15; \
	VFMADD231PS  Y12, Y15, Y2; \
	VFMADD231PS  Y13, Y15, Y3; \
	VBROADCASTSS (SI)(R8*2), Y14; \
	VFMADD231PS  Y12, Y14, Y4; \
	VFMADD231PS  Y13, Y14, Y5; \
	VBROADCASTSS (SI)(R12*1), Y15; \
	VFMADD231PS  Y12, Y15, Y6; \
	VFMADD231PS  Y13, Y15, Y7; \
	VBROADCASTSS (SI)(R8*4), Y14; \
	VFMADD231PS  Y12, Y14, Y8; \
	VFMADD231PS  Y13, Y14, Y9; \
	VBROADCASTSS (SI)(R13*1), Y15; \
	VFMADD231PS  Y12, Y15, Y10; \
	VFMADD231PS  Y13, Y15, Y11; \
	ADDQ         $4, SI; \
	ADDQ         R9, DI

// func sgemmPanelAVX2(m, k int, alpha float32, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, accumulate bool)
//
// C[0:m, 0:16] = alpha A[0:m, 0:k] B[0:k, 0:16] (+ C when accumulate), all
// row-major with leading dimensions in elements; m is a multiple of 6.
TEXT ·sgemmPanelAVX2(SB), NOSPLIT, $0-73
	MOVQ m+0(FP), DX
	MOVQ a+24(FP), AX
	MOVQ lda+32(FP), R8
	SHLQ $2, R8
	MOVQ b+40(FP), BX
	MOVQ ldb+48(FP), R9
	SHLQ $2, R9
	MOVQ c+56(FP), CX
	MOVQ ldc+64(FP), R10
	SHLQ $2, R10
	LEAQ (R8)(R8*2), R12
	LEAQ (R8)(R8*4), R13

gemmRows:
	CMPQ DX, $6
	JLT  gemmDone
	ZERO6x16
	MOVQ AX, SI
	MOVQ BX, DI
	MOVQ k+8(FP), R11

gemmK4:
	CMPQ R11, $4
	JLT  gemmK1
	KSTEP
	KSTEP
	KSTEP
	KSTEP
	SUBQ $4, R11
	JMP  gemmK4

gemmK1:
	TESTQ R11, R11
	JEQ   gemmStore
	KSTEP
	DECQ  R11
	JMP   gemmK1

gemmStore:
	VBROADCASTSS alpha+16(FP), Y12
	SCALE6x16
	LEAQ   (R10)(R10*2), SI
	LEAQ   (R10)(R10*4), DI
	MOVBLZX accumulate+72(FP), R11
	TESTQ  R11, R11
	JEQ    gemmWrite
	ADDC6x16

gemmWrite:
	STOREC6x16
	LEAQ    (AX)(R8*4), AX
	LEAQ    (AX)(R8*2), AX
	LEAQ    (CX)(R10*4), CX
	LEAQ    (CX)(R10*2), CX
	SUBQ    $6, DX
	JMP     gemmRows

gemmDone:
	VZEROUPPER
	RET

// func rowMaxAVX2(s *float32, lds, nr, nc int, yr, yc *int32, negMax, posMax *float32)
TEXT ·rowMaxAVX2(SB), NOSPLIT, $0-64
	MOVQ    s+0(FP), SI
	MOVQ    lds+8(FP), R8
	SHLQ    $2, R8
	MOVQ    nc+24(FP), R9
	MOVQ    yc+40(FP), R11
	VMOVUPS negInf<>(SB), Y15
	XORQ    DX, DX

maxRow:
	CMPQ         DX, nr+16(FP)
	JGE          maxDone
	MOVQ         yr+32(FP), R12
	VPBROADCASTD (R12)(DX*4), Y14
	VMOVUPS      Y15, Y0
	VMOVUPS      Y15, Y1
	XORQ         AX, AX

maxCol:
	CMPQ      AX, R9
	JGE       maxRowEnd
	VMOVUPS   (SI)(AX*4), Y2
	VPCMPEQD  (R11)(AX*4), Y14, Y3
	VBLENDVPS Y3, Y15, Y2, Y4
	VMAXPS    Y4, Y0, Y0
	VBLENDVPS Y3, Y2, Y15, Y5
	VMAXPS    Y5, Y1, Y1
	ADDQ      $8, AX
	JMP       maxCol

maxRowEnd:
	HMAX(Y0, X0, Y2, X2)
	HMAX(Y1, X1, Y2, X2)
	MOVQ   negMax+48(FP), R12
	VMOVSS X0, (R12)(DX*4)
	MOVQ   posMax+56(FP), R12
	VMOVSS X1, (R12)(DX*4)
	ADDQ   R8, SI
	INCQ   DX
	JMP    maxRow

maxDone:
	VZEROUPPER
	RET

// func rowExpSumAVX2(s *float32, lds, nr, nc int, yr, yc *int32, negShift, posShift, negSum, posSum *float32)
TEXT ·rowExpSumAVX2(SB), NOSPLIT, $0-80
	MOVQ s+0(FP), SI
	MOVQ lds+8(FP), R8
	SHLQ $2, R8
	MOVQ nc+24(FP), R9
	MOVQ yc+40(FP), R11
	XORQ DX, DX

expRow:
	CMPQ         DX, nr+16(FP)
	JGE          expDone
	MOVQ         yr+32(FP), R12
	VPBROADCASTD (R12)(DX*4), Y14
	MOVQ         negShift+48(FP), R12
	VBROADCASTSS (R12)(DX*4), Y12
	MOVQ         posShift+56(FP), R12
	VBROADCASTSS (R12)(DX*4), Y13
	VXORPS       Y0, Y0, Y0
	VXORPS       Y1, Y1, Y1
	XORQ         AX, AX

expCol:
	CMPQ      AX, R9
	JGE       expRowEnd
	VMOVUPS   (SI)(AX*4), Y2
	VPCMPEQD  (R11)(AX*4), Y14, Y3
	VBLENDVPS Y3, Y13, Y12, Y4
	VSUBPS    Y4, Y2, Y2
	EXP(Y2, Y5, Y6, Y7)
	VANDPS    Y2, Y3, Y4
	VADDPS    Y4, Y1, Y1
	VANDNPS   Y2, Y3, Y4
	VADDPS    Y4, Y0, Y0
	ADDQ      $8, AX
	JMP       expCol

expRowEnd:
	HSUM(Y0, X0, Y2, X2)
	HSUM(Y1, X1, Y2, X2)
	MOVQ   negSum+64(FP), R12
	VMOVSS X0, (R12)(DX*4)
	MOVQ   posSum+72(FP), R12
	VMOVSS X1, (R12)(DX*4)
	ADDQ   R8, SI
	INCQ   DX
	JMP    expRow

expDone:
	VZEROUPPER
	RET

// func rowSoftplusAVX2(s *float32, lds, nr, nc int, yr, yc *int32, u, spSum, qSum *float32)
TEXT ·rowSoftplusAVX2(SB), NOSPLIT, $0-72
	MOVQ s+0(FP), SI
	MOVQ lds+8(FP), R8
	SHLQ $2, R8
	MOVQ nc+24(FP), R9
	MOVQ yc+40(FP), R11
	XORQ DX, DX

spRow:
	CMPQ         DX, nr+16(FP)
	JGE          spDone
	MOVQ         yr+32(FP), R12
	VPBROADCASTD (R12)(DX*4), Y14
	MOVQ         u+48(FP), R12
	VBROADCASTSS (R12)(DX*4), Y13
	VXORPS       Y0, Y0, Y0
	VXORPS       Y1, Y1, Y1
	XORQ         AX, AX

spCol:
	CMPQ     AX, R9
	JGE      spRowEnd
	VMOVUPS  (SI)(AX*4), Y2
	VPCMPEQD (R11)(AX*4), Y14, Y3
	VCMPPS   $4, negInf<>(SB), Y2, Y4
	VANDPS   Y4, Y3, Y3
	VTESTPS  Y3, Y3
	JEQ      spNext

	// v = u - s; e = exp(-|v|)
	VSUBPS Y2, Y13, Y2
	VANDPS absMask<>(SB), Y2, Y4
	VXORPS signBit<>(SB), Y4, Y4
	EXP(Y4, Y5, Y6, Y7)

	// sigmoid(v) = (v >= 0 ? 1 : e) / (1 + e)
	VADDPS    one<>(SB), Y4, Y5
	VXORPS    Y6, Y6, Y6
	VCMPPS    $5, Y6, Y2, Y7
	VBLENDVPS Y7, one<>(SB), Y4, Y6
	VDIVPS    Y5, Y6, Y6
	VANDPS    Y6, Y3, Y6
	VADDPS    Y6, Y1, Y1

	// softplus(v) = max(v, 0) + log1p(e), log1p(e) = log(w) e / (w - 1)
	// with w = 1 + e, or e where w rounds to 1.
	VMOVUPS   Y5, Y8
	LOG(Y8, Y9, Y10, Y11, Y12)
	VSUBPS    one<>(SB), Y5, Y9
	VMULPS    Y4, Y8, Y8
	VDIVPS    Y9, Y8, Y8
	VCMPPS    $0, one<>(SB), Y5, Y10
	VBLENDVPS Y10, Y4, Y8, Y8
	VXORPS    Y10, Y10, Y10
	VMAXPS    Y10, Y2, Y10
	VADDPS    Y10, Y8, Y8
	VANDPS    Y8, Y3, Y8
	VADDPS    Y8, Y0, Y0

spNext:
	ADDQ $8, AX
	JMP  spCol

spRowEnd:
	HSUM(Y0, X0, Y2, X2)
	HSUM(Y1, X1, Y2, X2)
	MOVQ   spSum+56(FP), R12
	VMOVSS X0, (R12)(DX*4)
	MOVQ   qSum+64(FP), R12
	VMOVSS X1, (R12)(DX*4)
	ADDQ   R8, SI
	INCQ   DX
	JMP    spRow

spDone:
	VZEROUPPER
	RET

// func gradSupConAVX2(s *float32, lds, nr, nc int, yr, yc *int32, ar, br, cr, ac, bc, cc *float32)
TEXT ·gradSupConAVX2(SB), NOSPLIT, $0-96
	MOVQ s+0(FP), SI
	MOVQ lds+8(FP), R8
	SHLQ $2, R8
	MOVQ nc+24(FP), R9
	MOVQ yc+40(FP), R11
	MOVQ ac+72(FP), CX
	MOVQ bc+80(FP), DI
	MOVQ cc+88(FP), BX
	XORQ DX, DX

gsRow:
	CMPQ         DX, nr+16(FP)
	JGE          gsDone
	MOVQ         yr+32(FP), R12
	VPBROADCASTD (R12)(DX*4), Y13
	MOVQ         ar+48(FP), R12
	VBROADCASTSS (R12)(DX*4), Y10
	MOVQ         br+56(FP), R12
	VBROADCASTSS (R12)(DX*4), Y11
	MOVQ         cr+64(FP), R12
	VBROADCASTSS (R12)(DX*4), Y12
	XORQ         AX, AX

gsCol:
	CMPQ        AX, R9
	JGE         gsRowEnd
	VMOVUPS     (SI)(AX*4), Y0
	VPCMPEQD    (R11)(AX*4), Y13, Y1
	VADDPS      Y11, Y0, Y2
	EXP(Y2, Y5, Y6, Y7)
	VMULPS      Y10, Y2, Y2
	VADDPS      (DI)(AX*4), Y0, Y3
	EXP(Y3, Y5, Y6, Y7)
	VFMADD231PS (CX)(AX*4), Y3, Y2
	VADDPS      (BX)(AX*4), Y12, Y4
	VANDPS      Y4, Y1, Y4
	VSUBPS      Y4, Y2, Y2
	VMOVUPS     Y2, (SI)(AX*4)
	ADDQ        $8, AX
	JMP         gsCol

gsRowEnd:
	ADDQ R8, SI
	INCQ DX
	JMP  gsRow

gsDone:
	VZEROUPPER
	RET

// func gradSincereAVX2(s *float32, lds, nr, nc int, yr, yc *int32, cr, wr, ur, cc, wc, uc *float32)
TEXT ·gradSincereAVX2(SB), NOSPLIT, $0-96
	MOVQ s+0(FP), SI
	MOVQ lds+8(FP), R8
	SHLQ $2, R8
	MOVQ nc+24(FP), R9
	MOVQ yc+40(FP), R11
	MOVQ cc+72(FP), CX
	MOVQ wc+80(FP), DI
	MOVQ uc+88(FP), BX
	XORQ DX, DX

gnRow:
	CMPQ         DX, nr+16(FP)
	JGE          gnDone
	MOVQ         yr+32(FP), R12
	VPBROADCASTD (R12)(DX*4), Y13
	MOVQ         cr+48(FP), R12
	VBROADCASTSS (R12)(DX*4), Y10
	MOVQ         wr+56(FP), R12
	VBROADCASTSS (R12)(DX*4), Y11
	MOVQ         ur+64(FP), R12
	VBROADCASTSS (R12)(DX*4), Y12
	XORQ         AX, AX

gnCol:
	CMPQ      AX, R9
	JGE       gnRowEnd
	VMOVUPS   (SI)(AX*4), Y0
	VPCMPEQD  (R11)(AX*4), Y13, Y1

	// e1 = exp(s + wr) for a negative, exp(s - ur) for a positive; e2 the
	// same with the column's parameters.
	VADDPS    Y11, Y0, Y2
	VSUBPS    Y12, Y0, Y3
	VBLENDVPS Y1, Y3, Y2, Y2
	EXP(Y2, Y5, Y6, Y7)
	VADDPS    (DI)(AX*4), Y0, Y3
	VSUBPS    (BX)(AX*4), Y0, Y4
	VBLENDVPS Y1, Y4, Y3, Y3
	EXP(Y3, Y5, Y6, Y7)

	// negative: cr e1 + cc e2
	VMULPS      Y10, Y2, Y8
	VFMADD231PS (CX)(AX*4), Y3, Y8
	VTESTPS     Y1, Y1
	JEQ         gnStore

	// positive: -(cr / (1 + e1) + cc / (1 + e2))
	VADDPS    one<>(SB), Y2, Y2
	VDIVPS    Y2, Y10, Y4
	VADDPS    one<>(SB), Y3, Y3
	VMOVUPS   (CX)(AX*4), Y9
	VDIVPS    Y3, Y9, Y9
	VADDPS    Y9, Y4, Y4
	VXORPS    signBit<>(SB), Y4, Y4
	VBLENDVPS Y1, Y4, Y8, Y8

gnStore:
	VMOVUPS Y8, (SI)(AX*4)
	ADDQ    $8, AX
	JMP     gnCol

gnRowEnd:
	ADDQ R8, SI
	INCQ DX
	JMP  gnRow

gnDone:
	VZEROUPPER
	RET

// PSTEP is one k of the packed micro-kernel: A's 6 values at SI, B's 16 at DI.
#define PSTEP \
	VMOVUPS      (DI), Y12; \
	VMOVUPS      32(DI), Y13; \
	VBROADCASTSS (SI), Y14; \
	VFMADD231PS  Y12, Y14, Y0; \
	VFMADD231PS  Y13, Y14, Y1; \
	VBROADCASTSS 4(SI), Y15; \
	VFMADD231PS  Y12, Y15, Y2; \
	VFMADD231PS  Y13, Y15, Y3; \
	VBROADCASTSS 8(SI), Y14; \
	VFMADD231PS  Y12, Y14, Y4; \
	VFMADD231PS  Y13, Y14, Y5; \
	VBROADCASTSS 12(SI), Y15; \
	VFMADD231PS  Y12, Y15, Y6; \
	VFMADD231PS  Y13, Y15, Y7; \
	VBROADCASTSS 16(SI), Y14; \
	VFMADD231PS  Y12, Y14, Y8; \
	VFMADD231PS  Y13, Y14, Y9; \
	VBROADCASTSS 20(SI), Y15; \
	VFMADD231PS  Y12, Y15, Y10; \
	VFMADD231PS  Y13, Y15, Y11; \
	ADDQ         $24, SI; \
	ADDQ         $64, DI

// func sgemmMicroAVX2(k int, a, b, c *float32, ldc int, alpha float32, accumulate bool)
//
// C[0:6, 0:16] = alpha * sum_p A[p][0:6] B[p][0:16] (+ C when accumulate),
// with A packed 6 values per p and B 16 per p; C row-major, ldc in elements.
TEXT ·sgemmMicroAVX2(SB), NOSPLIT, $0-45
	MOVQ k+0(FP), R11
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ c+24(FP), CX
	MOVQ ldc+32(FP), R10
	SHLQ $2, R10
	ZERO6x16

microK4:
	CMPQ R11, $4
	JLT  microK1
	PSTEP
	PSTEP
	PSTEP
	PSTEP
	SUBQ $4, R11
	JMP  microK4

microK1:
	TESTQ R11, R11
	JEQ   microStore
	PSTEP
	DECQ  R11
	JMP   microK1

microStore:
	VBROADCASTSS alpha+40(FP), Y12
	SCALE6x16
	LEAQ    (R10)(R10*2), SI
	LEAQ    (R10)(R10*4), DI
	MOVBLZX accumulate+44(FP), R11
	TESTQ   R11, R11
	JEQ     microWrite
	ADDC6x16

microWrite:
	STOREC6x16
	VZEROUPPER
	RET

// The batch norm row kernels below walk rows of c channels (c a multiple of
// 8), 8 channels per YMM word; per-channel arrays are indexed by AX.

// func bnSumsAVX2(x *float32, rows, c int, shift, s1, s2 *float32)
// s1[j] += sum_r (x[r][j] - shift[j]); s2[j] += sum_r (x[r][j] - shift[j])^2
TEXT ·bnSumsAVX2(SB), NOSPLIT, $0-48
	MOVQ x+0(FP), SI
	MOVQ rows+8(FP), DX
	MOVQ c+16(FP), R9
	MOVQ shift+24(FP), R10
	MOVQ s1+32(FP), R11
	MOVQ s2+40(FP), R12

bsRow:
	TESTQ DX, DX
	JEQ   bsDone
	XORQ  AX, AX

bsCol:
	CMPQ        AX, R9
	JGE         bsRowEnd
	VMOVUPS     (SI)(AX*4), Y0
	VSUBPS      (R10)(AX*4), Y0, Y0
	VADDPS      (R11)(AX*4), Y0, Y1
	VMOVUPS     Y1, (R11)(AX*4)
	VMOVUPS     (R12)(AX*4), Y2
	VFMADD231PS Y0, Y0, Y2
	VMOVUPS     Y2, (R12)(AX*4)
	ADDQ        $8, AX
	JMP         bsCol

bsRowEnd:
	LEAQ (SI)(R9*4), SI
	DECQ DX
	JMP  bsRow

bsDone:
	VZEROUPPER
	RET

// func bnAffineAVX2(x *float32, rows, c int, scale, off, y *float32, relu bool)
// y[r][j] = x[r][j] scale[j] + off[j], then max(., 0) with relu.
TEXT ·bnAffineAVX2(SB), NOSPLIT, $0-49
	MOVQ    x+0(FP), SI
	MOVQ    rows+8(FP), DX
	MOVQ    c+16(FP), R9
	MOVQ    scale+24(FP), R10
	MOVQ    off+32(FP), R11
	MOVQ    y+40(FP), DI
	MOVBLZX relu+48(FP), R12
	VXORPS  Y15, Y15, Y15

baRow:
	TESTQ DX, DX
	JEQ   baDone
	XORQ  AX, AX

baCol:
	CMPQ        AX, R9
	JGE         baRowEnd
	VMOVUPS     (SI)(AX*4), Y0
	VMOVUPS     (R11)(AX*4), Y1
	VFMADD231PS (R10)(AX*4), Y0, Y1
	TESTQ       R12, R12
	JEQ         baStore
	VMAXPS      Y15, Y1, Y1

baStore:
	VMOVUPS Y1, (DI)(AX*4)
	ADDQ    $8, AX
	JMP     baCol

baRowEnd:
	LEAQ (SI)(R9*4), SI
	LEAQ (DI)(R9*4), DI
	DECQ DX
	JMP  baRow

baDone:
	VZEROUPPER
	RET

// func bnBackSumsAVX2(x, dy, y *float32, rows, c int, mean, invStd, sa, sb *float32)
// With g = dy (masked to where y > 0 when y is not nil) and
// xh = (x - mean) invStd: sa[j] += sum g, sb[j] += sum g xh.
TEXT ·bnBackSumsAVX2(SB), NOSPLIT, $0-72
	MOVQ   x+0(FP), SI
	MOVQ   dy+8(FP), DI
	MOVQ   y+16(FP), BX
	MOVQ   rows+24(FP), DX
	MOVQ   c+32(FP), R9
	MOVQ   mean+40(FP), R10
	MOVQ   invStd+48(FP), R11
	MOVQ   sa+56(FP), R12
	MOVQ   sb+64(FP), R13
	VXORPS Y15, Y15, Y15

bbRow:
	TESTQ DX, DX
	JEQ   bbDone
	XORQ  AX, AX

bbCol:
	CMPQ    AX, R9
	JGE     bbRowEnd
	VMOVUPS (DI)(AX*4), Y1
	TESTQ   BX, BX
	JEQ     bbNoMask
	VCMPPS  $4, (BX)(AX*4), Y15, Y3    // y != 0 (never negative)
	VANDPS  Y3, Y1, Y1

bbNoMask:
	VMOVUPS     (SI)(AX*4), Y0
	VSUBPS      (R10)(AX*4), Y0, Y0
	VMULPS      (R11)(AX*4), Y0, Y0
	VADDPS      (R12)(AX*4), Y1, Y2
	VMOVUPS     Y2, (R12)(AX*4)
	VMOVUPS     (R13)(AX*4), Y2
	VFMADD231PS Y1, Y0, Y2
	VMOVUPS     Y2, (R13)(AX*4)
	ADDQ        $8, AX
	JMP         bbCol

bbRowEnd:
	LEAQ  (SI)(R9*4), SI
	LEAQ  (DI)(R9*4), DI
	TESTQ BX, BX
	JEQ   bbNext
	LEAQ  (BX)(R9*4), BX

bbNext:
	DECQ DX
	JMP  bbRow

bbDone:
	VZEROUPPER
	RET

// func bnBackApplyAVX2(x, dy, y *float32, rows, c int, mean, invStd, k, ka, kb, dx *float32)
// dx = k (g - ka - xh kb), g and xh as in bnBackSumsAVX2.
TEXT ·bnBackApplyAVX2(SB), NOSPLIT, $0-88
	MOVQ   x+0(FP), SI
	MOVQ   dy+8(FP), DI
	MOVQ   y+16(FP), BX
	MOVQ   rows+24(FP), DX
	MOVQ   c+32(FP), R9
	MOVQ   mean+40(FP), R10
	MOVQ   invStd+48(FP), R11
	MOVQ   dx+80(FP), CX
	VXORPS Y15, Y15, Y15

bpRow:
	TESTQ DX, DX
	JEQ   bpDone
	XORQ  AX, AX

bpCol:
	CMPQ    AX, R9
	JGE     bpRowEnd
	VMOVUPS (DI)(AX*4), Y1
	TESTQ   BX, BX
	JEQ     bpNoMask
	VCMPPS  $4, (BX)(AX*4), Y15, Y3
	VANDPS  Y3, Y1, Y1

bpNoMask:
	VMOVUPS      (SI)(AX*4), Y0
	VSUBPS       (R10)(AX*4), Y0, Y0
	VMULPS       (R11)(AX*4), Y0, Y0       // xh
	MOVQ         ka+64(FP), R12
	VSUBPS       (R12)(AX*4), Y1, Y1       // g - ka
	MOVQ         kb+72(FP), R12
	VFNMADD231PS (R12)(AX*4), Y0, Y1       // - xh kb
	MOVQ         k+56(FP), R12
	VMULPS       (R12)(AX*4), Y1, Y1
	VMOVUPS      Y1, (CX)(AX*4)
	ADDQ         $8, AX
	JMP          bpCol

bpRowEnd:
	LEAQ  (SI)(R9*4), SI
	LEAQ  (DI)(R9*4), DI
	LEAQ  (CX)(R9*4), CX
	TESTQ BX, BX
	JEQ   bpNext
	LEAQ  (BX)(R9*4), BX

bpNext:
	DECQ DX
	JMP  bpRow

bpDone:
	VZEROUPPER
	RET

// func interleave6AVX2(dst, s0, s1, s2, s3, s4, s5 *float32, n int)
//
// dst[6q+i] = s_i[q] for q < n (n a multiple of 8): six rows interleaved,
// 8 columns at a time by an 8x8 transpose whose last two rows are zero. The
// eighth store of each block writes 2 values past it, which the next block
// (or the caller's slack) absorbs.
TEXT ·interleave6AVX2(SB), NOSPLIT, $0-64
	MOVQ   dst+0(FP), DI
	MOVQ   s0+8(FP), SI
	MOVQ   s1+16(FP), R8
	MOVQ   s2+24(FP), R9
	MOVQ   s3+32(FP), R10
	MOVQ   s4+40(FP), R11
	MOVQ   s5+48(FP), R12
	MOVQ   n+56(FP), CX
	XORQ   AX, AX
	VXORPS Y15, Y15, Y15

ilLoop:
	CMPQ    AX, CX
	JGE     ilDone
	VMOVUPS (SI)(AX*4), Y0
	VMOVUPS (R8)(AX*4), Y1
	VMOVUPS (R9)(AX*4), Y2
	VMOVUPS (R10)(AX*4), Y3
	VMOVUPS (R11)(AX*4), Y4
	VMOVUPS (R12)(AX*4), Y5

	// t = unpack pairs of rows
	VUNPCKLPS Y1, Y0, Y6    // r0[0] r1[0] r0[1] r1[1] | [4] [5]
	VUNPCKHPS Y1, Y0, Y7    // r0[2] r1[2] r0[3] r1[3] | [6] [7]
	VUNPCKLPS Y3, Y2, Y8
	VUNPCKHPS Y3, Y2, Y9
	VUNPCKLPS Y5, Y4, Y10
	VUNPCKHPS Y5, Y4, Y11

	// u = quads of rows per column
	VSHUFPS $0x44, Y8, Y6, Y0   // rows 0-3, column 0 | 4
	VSHUFPS $0xee, Y8, Y6, Y1   // column 1 | 5
	VSHUFPS $0x44, Y9, Y7, Y2   // column 2 | 6
	VSHUFPS $0xee, Y9, Y7, Y3   // column 3 | 7
	VSHUFPS $0x44, Y15, Y10, Y4 // rows 4-5 (and zeros), column 0 | 4
	VSHUFPS $0xee, Y15, Y10, Y5
	VSHUFPS $0x44, Y15, Y11, Y6
	VSHUFPS $0xee, Y15, Y11, Y7

	// columns: rows 0-3 from u, rows 4-7 from the second set
	VPERM2F128 $0x20, Y4, Y0, Y8
	VPERM2F128 $0x20, Y5, Y1, Y9
	VPERM2F128 $0x20, Y6, Y2, Y10
	VPERM2F128 $0x20, Y7, Y3, Y11
	VPERM2F128 $0x31, Y4, Y0, Y12
	VPERM2F128 $0x31, Y5, Y1, Y13
	VPERM2F128 $0x31, Y6, Y2, Y14
	VPERM2F128 $0x31, Y7, Y3, Y0

	VMOVUPS Y8, (DI)
	VMOVUPS Y9, 24(DI)
	VMOVUPS Y10, 48(DI)
	VMOVUPS Y11, 72(DI)
	VMOVUPS Y12, 96(DI)
	VMOVUPS Y13, 120(DI)
	VMOVUPS Y14, 144(DI)
	VMOVUPS Y0, 168(DI)
	ADDQ    $192, DI
	ADDQ    $8, AX
	JMP     ilLoop

ilDone:
	VZEROUPPER
	RET

// func addToAVX2(dst, src *float32, n int)
// dst[i] += src[i] for i < n (n a multiple of 8).
TEXT ·addToAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	XORQ AX, AX

atLoop:
	CMPQ    AX, CX
	JGE     atDone
	VMOVUPS (DI)(AX*4), Y0
	VADDPS  (SI)(AX*4), Y0, Y0
	VMOVUPS Y0, (DI)(AX*4)
	ADDQ    $8, AX
	JMP     atLoop

atDone:
	VZEROUPPER
	RET
