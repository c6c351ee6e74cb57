import Backprop
import Synchronization

/// Handles given to C callers, and the rules that keep a bad pointer from ever being
/// dereferenced: a handle is the address of a `Handle` object that the registry keeps alive; any
/// pointer not in the registry (freed, foreign, another kind) is rejected before it is touched.
final class Handle: @unchecked Sendable {
    enum Object {
        case graph(Graph)
        case network(Network)
        case optimizer(OptimizerHandle)
        case dataset(Dataset)

        var graph: Graph? { if case .graph(let g) = self { g } else { nil } }
        var network: Network? { if case .network(let n) = self { n } else { nil } }
        var optimizer: OptimizerHandle? { if case .optimizer(let o) = self { o } else { nil } }
        var dataset: Dataset? { if case .dataset(let d) = self { d } else { nil } }
    }

    let object: Object
    /// Shared by a network and its borrowed graph handle: one of them in use makes both busy.
    let lock: BusyLock
    /// A network's graph is borrowed: freed with the network, never by `bp_graph_free`.
    let isBorrowed: Bool
    /// For a network, the handle of its graph, registered when `bp_net_graph` first hands it out.
    let graphHandle: Handle?

    init(graph: Graph) {
        object = .graph(graph)
        lock = BusyLock()
        isBorrowed = false
        graphHandle = nil
    }

    init(optimizer: OptimizerHandle) {
        object = .optimizer(optimizer)
        lock = BusyLock()
        isBorrowed = false
        graphHandle = nil
    }

    init(dataset: Dataset) {
        object = .dataset(dataset)
        lock = BusyLock()
        isBorrowed = false
        graphHandle = nil
    }

    init(network: Network) {
        object = .network(network)
        lock = BusyLock()
        isBorrowed = false
        graphHandle = Handle(borrowedGraph: network.graph, lock: lock)
    }

    private init(borrowedGraph: Graph, lock: BusyLock) {
        object = .graph(borrowedGraph)
        self.lock = lock
        isBorrowed = true
        graphHandle = nil
    }

    var address: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }

    var kindName: String {
        switch object {
        case .graph: "bp_graph"
        case .network: "bp_net"
        case .optimizer: "bp_optimizer"
        case .dataset: "bp_dataset"
        }
    }
}

/// Marks a handle as in use by one thread; a second thread is refused (BP_ERR_BUSY) instead of
/// racing. `isFreed` turns away callers that looked the handle up just before it was freed.
final class BusyLock: Sendable {
    private let busy = Atomic<Bool>(false)
    private let freed = Atomic<Bool>(false)

    func acquire() throws {
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            throw BoundaryError.busy("the handle is being used by another thread")
        }
        if freed.load(ordering: .relaxed) {
            busy.store(false, ordering: .releasing)
            throw BoundaryError.invalidHandle("the handle has been freed")
        }
    }

    func release() { busy.store(false, ordering: .releasing) }

    func markFreed() { freed.store(true, ordering: .relaxed) }
}

/// Every live handle, keyed by address.
enum Registry {
    /// The table, and the two handles found last: a training loop alternates between a network
    /// and its optimizer, and comparing an address costs far less than hashing it.
    private struct Table {
        var handles: [UInt: Handle] = [:]
        var recent: (Handle?, Handle?) = (nil, nil)
    }

    private static let table = Mutex(Table())

    static func register(_ handle: Handle) -> UnsafeMutableRawPointer {
        table.withLock { $0.handles[UInt(bitPattern: handle.address)] = handle }
        return handle.address
    }

    static func lookup(_ pointer: OpaquePointer?) -> Handle? {
        guard let pointer else { return nil }
        let address = UnsafeMutableRawPointer(pointer)
        return table.withLock { table in
            if let handle = table.recent.0, handle.address == address { return handle }
            if let handle = table.recent.1, handle.address == address { return handle }
            guard let handle = table.handles[UInt(bitPattern: address)] else { return nil }
            table.recent = (handle, table.recent.0)
            return handle
        }
    }

    static func remove(_ handle: Handle) {
        table.withLock { table in
            table.handles.removeValue(forKey: UInt(bitPattern: handle.address))
            if table.recent.0 === handle { table.recent.0 = nil }
            if table.recent.1 === handle { table.recent.1 = nil }
        }
    }
}

/// What a bp_optimizer handle holds: the optimizer and, once set, its learning-rate schedule.
final class OptimizerHandle {
    let optimizer: Optimizer
    var scheduler: Scheduler?

    init(_ optimizer: Optimizer) { self.optimizer = optimizer }
}
