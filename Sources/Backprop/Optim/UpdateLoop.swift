import BackpropKernels

/// One optimizer step's update of a range of parameter elements, in torch.optim's formulas.
/// Every element's update reads and writes that element alone, so ranges may run on different
/// threads (`Parallelism.forEachRange`) and give the bits of one thread.
struct UpdateLoop<T: Scalar>: RangeLoop {
    let algorithm: OptimizerAlgorithm
    let options: OptimizerOptions
    /// The step being taken, counting from 1 (bias corrections and SGD's first momentum).
    let step: Int
    let parameters, gradients: UnsafeMutablePointer<T>
    /// The state buffers the algorithm keeps with these options (`Optimizer.stateNames`).
    var momentumBuffer, expAvg, expAvgSq, maxExpAvgSq, squareAvg, gradAvg, sum: UnsafeMutablePointer<T>?

    init(algorithm: OptimizerAlgorithm, options: OptimizerOptions, step: Int,
         parameters: UnsafeMutablePointer<T>, gradients: UnsafeMutablePointer<T>) {
        self.algorithm = algorithm
        self.options = options
        self.step = step
        self.parameters = parameters
        self.gradients = gradients
    }

    @inline(__always)
    func run(_ range: Range<Int>) {
        let p = parameters, grad = gradients, o = options, t = step
        let lr = T(o.learningRate), wd = T(o.weightDecay)
        switch algorithm {
        case .sgd:
            let momentum = T(o.momentum), dampening = T(o.dampening)
            // One branch-free loop per case, so each vectorizes.
            guard let buf = momentumBuffer else {
                for i in range { p[i] -= lr * (grad[i] + wd * p[i]) }
                return
            }
            let keep: T = t == 1 ? 0 : momentum, take: T = t == 1 ? 1 : 1 - dampening
            if o.nesterov {
                for i in range {
                    let g = grad[i] + wd * p[i]
                    buf[i] = keep * buf[i] + take * g
                    p[i] -= lr * (g + momentum * buf[i])
                }
            } else if T.self == Float.self {
                // The same loop in vector code chosen for the CPU (BackpropKernels/update_loops.c).
                func float(_ pointer: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<Float> {
                    UnsafeMutableRawPointer(pointer + range.lowerBound).assumingMemoryBound(to: Float.self)
                }
                bpk_sgd_momentum(float(p), float(grad), float(buf), range.count, Float(o.learningRate),
                                 Float(o.weightDecay), Float(keep), Float(take))
            } else {
                for i in range {
                    buf[i] = keep * buf[i] + take * (grad[i] + wd * p[i])
                    p[i] -= lr * buf[i]
                }
            }
        case .adam, .adamW:
            let m = expAvg!, v = expAvgSq!, vmax = maxExpAvgSq
            let b1 = T(o.beta1), b2 = T(o.beta2), eps = T(o.eps)
            let correction1 = 1 - T.pow(b1, T(t)), correction2Root = T.sqrt(1 - T.pow(b2, T(t)))
            let stepSize = lr / correction1
            let decoupled = algorithm == .adamW
            for i in range {
                if decoupled { p[i] *= 1 - lr * wd }
                let g = decoupled ? grad[i] : grad[i] + wd * p[i]
                m[i] = b1 * m[i] + (1 - b1) * g
                v[i] = b2 * v[i] + (1 - b2) * g * g
                var second = v[i]
                if let vmax {
                    vmax[i] = max(vmax[i], v[i])
                    second = vmax[i]
                }
                p[i] -= stepSize * m[i] / (T.sqrt(second) / correction2Root + eps)
            }
        case .rmsprop:
            let square = squareAvg!, average = gradAvg, alpha = T(o.alpha), eps = T(o.eps)
            let momentum = T(o.momentum)
            for i in range {
                let g = grad[i] + wd * p[i]
                square[i] = alpha * square[i] + (1 - alpha) * g * g
                var denominator: T
                if let average {
                    average[i] = alpha * average[i] + (1 - alpha) * g
                    denominator = T.sqrt(square[i] - average[i] * average[i]) + eps
                } else {
                    denominator = T.sqrt(square[i]) + eps
                }
                if let momentumBuffer {
                    momentumBuffer[i] = momentum * momentumBuffer[i] + g / denominator
                    p[i] -= lr * momentumBuffer[i]
                } else {
                    p[i] -= lr * g / denominator
                }
            }
        case .adagrad:
            let sum = sum!, eps = T(o.eps)
            let clr = lr / (1 + T(t - 1) * T(o.learningRateDecay))
            for i in range {
                let g = grad[i] + wd * p[i]
                sum[i] += g * g
                p[i] -= clr * g / (T.sqrt(sum[i]) + eps)
            }
        }
    }
}
