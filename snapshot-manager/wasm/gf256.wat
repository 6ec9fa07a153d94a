;; GF(2^8) matrix-times-shards kernel of the Reed-Solomon codec, in WebAssembly SIMD128.
;; `npm run wasm:gen` assembles it into gf256-wasm.ts; a unit test checks that they agree.
;;
;; apply(tab, src, srcStride, q, dst, dstStride, p, len) computes, for row j < p and byte x < len,
;;   dst[j*dstStride + x] = XOR over i < q of c[j][i] * src[i*srcStride + x]   (GF(2^8) products)
;; Contract: q >= 1; len is a multiple of 32; the rows do not overlap the inputs or the tables.
;; Coefficient c[j][i] is given as two 16-byte split-nibble tables at tab + (j*q + i)*32: bytes
;; 0..15 hold c*v and bytes 16..31 hold c*(v << 4), for v = 0..15, so that
;;   c*b = swizzle(lo, b & 15) XOR swizzle(hi, b >> 4).
;;
;; Shape, as measured on the 2-core EPYC (V8 11.3, 128-bit SIMD only): up to 4 output rows per
;; pass over the inputs, their accumulators kept in locals (registers) and each input loaded once
;; per pass; 32 bytes (two vectors) per iteration, which shares each table load between them.
;; Four vectors per iteration ran out of registers and was slower; keeping the tables in locals
;; and accumulating in memory instead was no faster. The caller sizes the chunks (cache).
(module
  (memory (export "memory") 1)

  (func (export "apply") (param $tab i32) (param $src i32) (param $srcStride i32) (param $q i32) (param $dst i32) (param $dstStride i32) (param $p i32) (param $len i32)
    (block $done
      (loop $groups
        (br_if $done (i32.eqz (local.get $p)))
        (if (i32.ge_u (local.get $p) (i32.const 4))
          (then
            (call $rows4 (local.get $tab) (local.get $src) (local.get $srcStride) (local.get $q) (local.get $dst) (local.get $dstStride) (local.get $len))
            (local.set $tab (i32.add (local.get $tab) (i32.shl (local.get $q) (i32.const 7))))
            (local.set $dst (i32.add (local.get $dst) (i32.shl (local.get $dstStride) (i32.const 2))))
            (local.set $p (i32.sub (local.get $p) (i32.const 4)))
            (br $groups)))
        (if (i32.eq (local.get $p) (i32.const 3))
          (then (call $rows3 (local.get $tab) (local.get $src) (local.get $srcStride) (local.get $q) (local.get $dst) (local.get $dstStride) (local.get $len))))
        (if (i32.eq (local.get $p) (i32.const 2))
          (then (call $rows2 (local.get $tab) (local.get $src) (local.get $srcStride) (local.get $q) (local.get $dst) (local.get $dstStride) (local.get $len))))
        (if (i32.eq (local.get $p) (i32.const 1))
          (then (call $rows1 (local.get $tab) (local.get $src) (local.get $srcStride) (local.get $q) (local.get $dst) (local.get $dstStride) (local.get $len)))))))

  ;; 4 output rows per pass over the inputs.
  (func $rows4 (param $tab i32) (param $src i32) (param $srcStride i32) (param $q i32) (param $dst i32) (param $dstStride i32) (param $len i32)
    (local $x i32) (local $i i32) (local $in i32) (local $t i32) (local $d i32) (local $tabStride i32)
    (local $mask v128) (local $lo0 v128) (local $hi0 v128) (local $lo1 v128) (local $hi1 v128) (local $tl v128) (local $th v128)
    (local $a0 v128) (local $b0 v128) (local $a1 v128) (local $b1 v128) (local $a2 v128) (local $b2 v128) (local $a3 v128) (local $b3 v128)
    (local.set $mask (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15))
    (local.set $tabStride (i32.shl (local.get $q) (i32.const 5)))
    (block $done
      (loop $columns
        (br_if $done (i32.ge_u (local.get $x) (local.get $len)))
        (local.set $a0 (v128.const i64x2 0 0))
        (local.set $b0 (v128.const i64x2 0 0))
        (local.set $a1 (v128.const i64x2 0 0))
        (local.set $b1 (v128.const i64x2 0 0))
        (local.set $a2 (v128.const i64x2 0 0))
        (local.set $b2 (v128.const i64x2 0 0))
        (local.set $a3 (v128.const i64x2 0 0))
        (local.set $b3 (v128.const i64x2 0 0))
        (local.set $in (i32.add (local.get $src) (local.get $x)))
        (local.set $t (local.get $tab))
        (local.set $i (local.get $q))
        (loop $inputs
          ;; Nibbles of 32 input bytes, the swizzle indices.
          (local.set $lo0 (v128.load offset=0 (local.get $in)))
          (local.set $hi0 (v128.and (i16x8.shr_u (local.get $lo0) (i32.const 4)) (local.get $mask)))
          (local.set $lo0 (v128.and (local.get $lo0) (local.get $mask)))
          (local.set $lo1 (v128.load offset=16 (local.get $in)))
          (local.set $hi1 (v128.and (i16x8.shr_u (local.get $lo1) (i32.const 4)) (local.get $mask)))
          (local.set $lo1 (v128.and (local.get $lo1) (local.get $mask)))
          ;; Row 0.
          (local.set $tl (v128.load (local.get $t)))
          (local.set $th (v128.load offset=16 (local.get $t)))
          (local.set $a0 (v128.xor (local.get $a0) (v128.xor (i8x16.swizzle (local.get $tl) (local.get $lo0)) (i8x16.swizzle (local.get $th) (local.get $hi0)))))
          (local.set $b0 (v128.xor (local.get $b0) (v128.xor (i8x16.swizzle (local.get $tl) (local.get $lo1)) (i8x16.swizzle (local.get $th) (local.get $hi1)))))
          ;; Row 1.
          (local.set $tl (v128.load (i32.add (local.get $t) (local.get $tabStride))))
          (local.set $th (v128.load offset=16 (i32.add (local.get $t) (local.get $tabStride))))
          (local.set $a1 (v128.xor (local.get $a1) (v128.xor (i8x16.swizzle (local.get $tl) (local.get $lo0)) (i8x16.swizzle (local.get $th) (local.get $hi0)))))
          (local.set $b1 (v128.xor (local.get $b1) (v128.xor (i8x16.swizzle (local.get $tl) (local.get $lo1)) (i8x16.swizzle (local.get $th) (local.get $hi1)))))
          ;; Row 2.
          (local.set $tl (v128.load (i32.add (local.get $t) (i32.mul (local.get $tabStride) (i32.const 2)))))
          (local.set $th (v128.load offset=16 (i32.add (local.get $t) (i32.mul (local.get $tabStride) (i32.const 2)))))
          (local.set $a2 (v128.xor (local.get $a2) (v128.xor (i8x16.swizzle (local.get $tl) (local.get $lo0)) (i8x16.swizzle (local.get $th) (local.get $hi0)))))
          (local.set $b2 (v128.xor (local.get $b2) (v128.xor (i8x16.swizzle (local.get $tl) (local.get $lo1)) (i8x16.swizzle (local.get $th) (local.get $hi1)))))
          ;; Row 3.
          (local.set $tl (v128.load (i32.add (local.get $t) (i32.mul (local.get $tabStride) (i32.const 3)))))
          (local.set $th (v128.load offset=16 (i32.add (local.get $t) (i32.mul (local.get $tabStride) (i32.const 3)))))
          (local.set $a3 (v128.xor (local.get $a3) (v128.xor (i8x16.swizzle (local.get $tl) (local.get $lo0)) (i8x16.swizzle (local.get $th) (local.get $hi0)))))
          (local.set $b3 (v128.xor (local.get $b3) (v128.xor (i8x16.swizzle (local.get $tl) (local.get $lo1)) (i8x16.swizzle (local.get $th) (local.get $hi1)))))
          (local.set $in (i32.add (local.get $in) (local.get $srcStride)))
          (local.set $t (i32.add (local.get $t) (i32.const 32)))
          (br_if $inputs (local.tee $i (i32.sub (local.get $i) (i32.const 1)))))
        (local.set $d (i32.add (local.get $dst) (local.get $x)))
        (v128.store (local.get $d) (local.get $a0))
        (v128.store offset=16 (local.get $d) (local.get $b0))
        (v128.store (i32.add (local.get $d) (local.get $dstStride)) (local.get $a1))
        (v128.store offset=16 (i32.add (local.get $d) (local.get $dstStride)) (local.get $b1))
        (v128.store (i32.add (local.get $d) (i32.mul (local.get $dstStride) (i32.const 2))) (local.get $a2))
        (v128.store offset=16 (i32.add (local.get $d) (i32.mul (local.get $dstStride) (i32.const 2))) (local.get $b2))
        (v128.store (i32.add (local.get $d) (i32.mul (local.get $dstStride) (i32.const 3))) (local.get $a3))
        (v128.store offset=16 (i32.add (local.get $d) (i32.mul (local.get $dstStride) (i32.const 3))) (local.get $b3))
        (local.set $x (i32.add (local.get $x) (i32.const 32)))
        (br $columns))))

  ;; 3 output rows per pass over the inputs.
  (func $rows3 (param $tab i32) (param $src i32) (param $srcStride i32) (param $q i32) (param $dst i32) (param $dstStride i32) (param $len i32)
    (local $x i32) (local $i i32) (local $in i32) (local $t i32) (local $d i32) (local $tabStride i32)
    (local $mask v128) (local $lo0 v128) (local $hi0 v128) (local $lo1 v128) (local $hi1 v128) (local $tl v128) (local $th v128)
    (local $a0 v128) (local $b0 v128) (local $a1 v128) (local $b1 v128) (local $a2 v128) (local $b2 v128)
    (local.set $mask (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15))
    (local.set $tabStride (i32.shl (local.get $q) (i32.const 5)))
    (block $done
      (loop $columns
        (br_if $done (i32.ge_u (local.get $x) (local.get $len)))
        (local.set $a0 (v128.const i64x2 0 0))
        (local.set $b0 (v128.const i64x2 0 0))
        (local.set $a1 (v128.const i64x2 0 0))
        (local.set $b1 (v128.const i64x2 0 0))
        (local.set $a2 (v128.const i64x2 0 0))
        (local.set $b2 (v128.const i64x2 0 0))
        (local.set $in (i32.add (local.get $src) (local.get $x)))
        (local.set $t (local.get $tab))
        (local.set $i (local.get $q))
        (loop $inputs
          ;; Nibbles of 32 input bytes, the swizzle indices.
          (local.set $lo0 (v128.load offset=0 (local.get $in)))
          (local.set $hi0 (v128.and (i16x8.shr_u (local.get $lo0) (i32.const 4)) (local.get $mask)))
          (local.set $lo0 (v128.and (local.get $lo0) (local.get $mask)))
          (local.set $lo1 (v128.load offset=16 (local.get $in)))
          (local.set $hi1 (v128.and (i16x8.shr_u (local.get $lo1) (i32.const 4)) (local.get $mask)))
          (local.set $lo1 (v128.and (local.get $lo1) (local.get $mask)))
          ;; Row 0.
          (local.set $tl (v128.load (local.get $t)))
          (local.set $th (v128.load offset=16 (local.get $t)))
          (local.set $a0 (v128.xor (local.get $a0) (v128.xor (i8x16.swizzle (local.get $tl) (local.get $lo0)) (i8x16.swizzle (local.get $th) (local.get $hi0)))))
          (local.set $b0 (v128.xor (local.get $b0) (v128.xor (i8x16.swizzle (local.get $tl) (local.get $lo1)) (i8x16.swizzle (local.get $th) (local.get $hi1)))))
          ;; Row 1.
          (local.set $tl (v128.load (i32.add (local.get $t) (local.get $tabStride))))
          (local.set $th (v128.load offset=16 (i32.add (local.get $t) (local.get $tabStride))))
          (local.set $a1 (v128.xor (local.get $a1) (v128.xor (i8x16.swizzle (local.get $tl) (local.get $lo0)) (i8x16.swizzle (local.get $th) (local.get $hi0)))))
          (local.set $b1 (v128.xor (local.get $b1) (v128.xor (i8x16.swizzle (local.get $tl) (local.get $lo1)) (i8x16.swizzle (local.get $th) (local.get $hi1)))))
          ;; Row 2.
          (local.set $tl (v128.load (i32.add (local.get $t) (i32.mul (local.get $tabStride) (i32.const 2)))))
          (local.set $th (v128.load offset=16 (i32.add (local.get $t) (i32.mul (local.get $tabStride) (i32.const 2)))))
          (local.set $a2 (v128.xor (local.get $a2) (v128.xor (i8x16.swizzle (local.get $tl) (local.get $lo0)) (i8x16.swizzle (local.get $th) (local.get $hi0)))))
          (local.set $b2 (v128.xor (local.get $b2) (v128.xor (i8x16.swizzle (local.get $tl) (local.get $lo1)) (i8x16.swizzle (local.get $th) (local.get $hi1)))))
          (local.set $in (i32.add (local.get $in) (local.get $srcStride)))
          (local.set $t (i32.add (local.get $t) (i32.const 32)))
          (br_if $inputs (local.tee $i (i32.sub (local.get $i) (i32.const 1)))))
        (local.set $d (i32.add (local.get $dst) (local.get $x)))
        (v128.store (local.get $d) (local.get $a0))
        (v128.store offset=16 (local.get $d) (local.get $b0))
        (v128.store (i32.add (local.get $d) (local.get $dstStride)) (local.get $a1))
        (v128.store offset=16 (i32.add (local.get $d) (local.get $dstStride)) (local.get $b1))
        (v128.store (i32.add (local.get $d) (i32.mul (local.get $dstStride) (i32.const 2))) (local.get $a2))
        (v128.store offset=16 (i32.add (local.get $d) (i32.mul (local.get $dstStride) (i32.const 2))) (local.get $b2))
        (local.set $x (i32.add (local.get $x) (i32.const 32)))
        (br $columns))))

  ;; 2 output rows per pass over the inputs.
  (func $rows2 (param $tab i32) (param $src i32) (param $srcStride i32) (param $q i32) (param $dst i32) (param $dstStride i32) (param $len i32)
    (local $x i32) (local $i i32) (local $in i32) (local $t i32) (local $d i32) (local $tabStride i32)
    (local $mask v128) (local $lo0 v128) (local $hi0 v128) (local $lo1 v128) (local $hi1 v128) (local $tl v128) (local $th v128)
    (local $a0 v128) (local $b0 v128) (local $a1 v128) (local $b1 v128)
    (local.set $mask (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15))
    (local.set $tabStride (i32.shl (local.get $q) (i32.const 5)))
    (block $done
      (loop $columns
        (br_if $done (i32.ge_u (local.get $x) (local.get $len)))
        (local.set $a0 (v128.const i64x2 0 0))
        (local.set $b0 (v128.const i64x2 0 0))
        (local.set $a1 (v128.const i64x2 0 0))
        (local.set $b1 (v128.const i64x2 0 0))
        (local.set $in (i32.add (local.get $src) (local.get $x)))
        (local.set $t (local.get $tab))
        (local.set $i (local.get $q))
        (loop $inputs
          ;; Nibbles of 32 input bytes, the swizzle indices.
          (local.set $lo0 (v128.load offset=0 (local.get $in)))
          (local.set $hi0 (v128.and (i16x8.shr_u (local.get $lo0) (i32.const 4)) (local.get $mask)))
          (local.set $lo0 (v128.and (local.get $lo0) (local.get $mask)))
          (local.set $lo1 (v128.load offset=16 (local.get $in)))
          (local.set $hi1 (v128.and (i16x8.shr_u (local.get $lo1) (i32.const 4)) (local.get $mask)))
          (local.set $lo1 (v128.and (local.get $lo1) (local.get $mask)))
          ;; Row 0.
          (local.set $tl (v128.load (local.get $t)))
          (local.set $th (v128.load offset=16 (local.get $t)))
          (local.set $a0 (v128.xor (local.get $a0) (v128.xor (i8x16.swizzle (local.get $tl) (local.get $lo0)) (i8x16.swizzle (local.get $th) (local.get $hi0)))))
          (local.set $b0 (v128.xor (local.get $b0) (v128.xor (i8x16.swizzle (local.get $tl) (local.get $lo1)) (i8x16.swizzle (local.get $th) (local.get $hi1)))))
          ;; Row 1.
          (local.set $tl (v128.load (i32.add (local.get $t) (local.get $tabStride))))
          (local.set $th (v128.load offset=16 (i32.add (local.get $t) (local.get $tabStride))))
          (local.set $a1 (v128.xor (local.get $a1) (v128.xor (i8x16.swizzle (local.get $tl) (local.get $lo0)) (i8x16.swizzle (local.get $th) (local.get $hi0)))))
          (local.set $b1 (v128.xor (local.get $b1) (v128.xor (i8x16.swizzle (local.get $tl) (local.get $lo1)) (i8x16.swizzle (local.get $th) (local.get $hi1)))))
          (local.set $in (i32.add (local.get $in) (local.get $srcStride)))
          (local.set $t (i32.add (local.get $t) (i32.const 32)))
          (br_if $inputs (local.tee $i (i32.sub (local.get $i) (i32.const 1)))))
        (local.set $d (i32.add (local.get $dst) (local.get $x)))
        (v128.store (local.get $d) (local.get $a0))
        (v128.store offset=16 (local.get $d) (local.get $b0))
        (v128.store (i32.add (local.get $d) (local.get $dstStride)) (local.get $a1))
        (v128.store offset=16 (i32.add (local.get $d) (local.get $dstStride)) (local.get $b1))
        (local.set $x (i32.add (local.get $x) (i32.const 32)))
        (br $columns))))

  ;; 1 output row per pass over the inputs.
  (func $rows1 (param $tab i32) (param $src i32) (param $srcStride i32) (param $q i32) (param $dst i32) (param $dstStride i32) (param $len i32)
    (local $x i32) (local $i i32) (local $in i32) (local $t i32) (local $d i32) (local $tabStride i32)
    (local $mask v128) (local $lo0 v128) (local $hi0 v128) (local $lo1 v128) (local $hi1 v128) (local $tl v128) (local $th v128)
    (local $a0 v128) (local $b0 v128)
    (local.set $mask (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15))
    (local.set $tabStride (i32.shl (local.get $q) (i32.const 5)))
    (block $done
      (loop $columns
        (br_if $done (i32.ge_u (local.get $x) (local.get $len)))
        (local.set $a0 (v128.const i64x2 0 0))
        (local.set $b0 (v128.const i64x2 0 0))
        (local.set $in (i32.add (local.get $src) (local.get $x)))
        (local.set $t (local.get $tab))
        (local.set $i (local.get $q))
        (loop $inputs
          ;; Nibbles of 32 input bytes, the swizzle indices.
          (local.set $lo0 (v128.load offset=0 (local.get $in)))
          (local.set $hi0 (v128.and (i16x8.shr_u (local.get $lo0) (i32.const 4)) (local.get $mask)))
          (local.set $lo0 (v128.and (local.get $lo0) (local.get $mask)))
          (local.set $lo1 (v128.load offset=16 (local.get $in)))
          (local.set $hi1 (v128.and (i16x8.shr_u (local.get $lo1) (i32.const 4)) (local.get $mask)))
          (local.set $lo1 (v128.and (local.get $lo1) (local.get $mask)))
          ;; Row 0.
          (local.set $tl (v128.load (local.get $t)))
          (local.set $th (v128.load offset=16 (local.get $t)))
          (local.set $a0 (v128.xor (local.get $a0) (v128.xor (i8x16.swizzle (local.get $tl) (local.get $lo0)) (i8x16.swizzle (local.get $th) (local.get $hi0)))))
          (local.set $b0 (v128.xor (local.get $b0) (v128.xor (i8x16.swizzle (local.get $tl) (local.get $lo1)) (i8x16.swizzle (local.get $th) (local.get $hi1)))))
          (local.set $in (i32.add (local.get $in) (local.get $srcStride)))
          (local.set $t (i32.add (local.get $t) (i32.const 32)))
          (br_if $inputs (local.tee $i (i32.sub (local.get $i) (i32.const 1)))))
        (local.set $d (i32.add (local.get $dst) (local.get $x)))
        (v128.store (local.get $d) (local.get $a0))
        (v128.store offset=16 (local.get $d) (local.get $b0))
        (local.set $x (i32.add (local.get $x) (i32.const 32)))
        (br $columns)))))
