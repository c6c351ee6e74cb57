/// Index arithmetic for NumPy broadcasting: walks the output's elements and, for each, the
/// positions of the corresponding elements of two inputs.
///
/// The common layouts (equal shapes, a scalar, a row repeated over leading axes) run as plain or
/// nested loops; any other layout walks an odometer with per-axis strides (0 on broadcast axes).
@inline(__always)
func forEachBroadcast(_ out: Shape, _ a: Shape, _ b: Shape, _ body: (_ i: Int, _ ia: Int, _ ib: Int) -> Void) {
    let n = out.count
    if a.count == n && b.count == n {
        for i in 0..<n { body(i, i, i) }
    } else if a.count == n, let period = repeatPeriod(of: b, in: out) {
        var i = 0
        while i < n {
            for j in 0..<period { body(i + j, i + j, j) }
            i += period
        }
    } else if b.count == n, let period = repeatPeriod(of: a, in: out) {
        var i = 0
        while i < n {
            for j in 0..<period { body(i + j, j, i + j) }
            i += period
        }
    } else {
        let rank = out.rank
        let stridesA = broadcastStrides(a, rank: rank, out: out)
        let stridesB = broadcastStrides(b, rank: rank, out: out)
        var index = [Int](repeating: 0, count: rank)
        var ia = 0, ib = 0
        for i in 0..<n {
            body(i, ia, ib)
            var axis = rank - 1
            while axis >= 0 {
                index[axis] += 1
                ia += stridesA[axis]
                ib += stridesB[axis]
                if index[axis] < out.dims[axis] { break }
                ia -= stridesA[axis] * out.dims[axis]
                ib -= stridesB[axis] * out.dims[axis]
                index[axis] = 0
                axis -= 1
            }
        }
    }
}

/// If `input` broadcast to `out` is a block of its own elements repeated end to end (a scalar,
/// or a row matching `out`'s trailing axes), the block's length; otherwise nil.
func repeatPeriod(of input: Shape, in out: Shape) -> Int? {
    let pad = out.rank - input.rank
    var axis = out.rank - 1
    while axis >= pad && input.dims[axis - pad] == out.dims[axis] { axis -= 1 }
    while axis >= pad {
        if input.dims[axis - pad] != 1 { return nil }
        axis -= 1
    }
    return input.count
}

/// Element strides of `input` aligned to an output of `rank` axes, with 0 on broadcast axes.
func broadcastStrides(_ input: Shape, rank: Int, out: Shape) -> [Int] {
    var strides = [Int](repeating: 0, count: rank)
    var step = 1
    for axis in stride(from: rank - 1, through: rank - input.rank, by: -1) {
        let d = input.dims[axis - (rank - input.rank)]
        strides[axis] = d == 1 && out.dims[axis] != 1 ? 0 : step
        step *= d
    }
    return strides
}
