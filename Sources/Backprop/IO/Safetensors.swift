/// The safetensors container: an 8-byte little-endian header length N, N bytes of JSON header,
/// then the tensors' raw little-endian bytes.
///
/// The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets
/// relative to the start of the data) and may hold "__metadata__", an object of strings. Reading
/// checks everything before anything is allocated from it: the header length against the file,
/// the JSON strictly and within bounds, each tensor's element count times its dtype's size
/// against its byte range, and that the ranges tile the data exactly (in order, no overlap, no
/// gap, ending at the end), as the reference implementation requires.
enum Safetensors {
    /// The reference implementation's limit on the header (100 MB).
    static let maxHeaderBytes = 100_000_000

    /// A tensor to write: its name, element type and shape.
    struct TensorSpec {
        let name: String
        let dtype: DType
        let shape: [Int]

        var byteCount: Int { shape.reduce(1, *) * dtype.size }
    }

    /// A tensor as read from a header: the byte range is relative to the data section.
    struct Entry {
        let name: String
        let dtype: DType
        let shape: [Int]
        let count: Int
        let range: Range<Int>
    }

    /// A checked header: the tensors in data order, the metadata, and where the data starts.
    struct Header {
        let entries: [Entry]
        let metadata: [String: String]
        let dataStart: Int

        func entry(_ name: String) -> Entry? { entries.first { $0.name == name } }
    }

    static func dtypeName(_ dtype: DType) -> String {
        switch dtype {
        case .float32: "F32"
        case .float64: "F64"
        }
    }

    static func dtype(named name: String) -> DType? {
        switch name {
        case "F32": .float32
        case "F64": .float64
        default: nil
        }
    }

    // MARK: - Writing

    /// The first bytes of a file holding `tensors` (their data back to back, in this order) and
    /// `metadata`: the length, then the JSON header padded with spaces so that the data starts
    /// at a multiple of 8 bytes. Also returns each tensor's byte range within the data.
    static func encodeHeader(_ tensors: [TensorSpec], metadata: [(key: String, value: String)]) -> (bytes: [UInt8], ranges: [Range<Int>]) {
        var members: [JSON.Member] = []
        if !metadata.isEmpty {
            members.append(JSON.Member(key: "__metadata__", value: .object(metadata.map { JSON.Member(key: $0.key, value: .string($0.value)) })))
        }
        var ranges: [Range<Int>] = []
        var offset = 0
        for tensor in tensors {
            let range = offset..<(offset + tensor.byteCount)
            ranges.append(range)
            offset = range.upperBound
            members.append(JSON.Member(key: tensor.name, value: .object([
                "dtype": .string(dtypeName(tensor.dtype)),
                "shape": .array(tensor.shape.map { .integer($0) }),
                "data_offsets": .array([.integer(range.lowerBound), .integer(range.upperBound)]),
            ])))
        }
        var json = Array(JSON.object(members).serialized.utf8)
        while (8 + json.count) % 8 != 0 { json.append(UInt8(ascii: " ")) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(8 + json.count)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: json)
        return (bytes, ranges)
    }

    // MARK: - Reading

    /// Reads and checks the header of `source`. Throws `BackpropError.format` naming the first
    /// problem found (I/O failures of a file are `BackpropError.io`).
    static func readHeader(_ source: ByteSource) throws -> Header {
        let size = source.count
        guard size >= 8 else {
            throw BackpropError.format("the data is \(size) bytes, too short for a safetensors file (its first 8 bytes give the header length)")
        }
        var length: UInt64 = 0
        try withUnsafeMutableBytes(of: &length) { try source.read(0..<8, into: $0.baseAddress!) }
        length = UInt64(littleEndian: length)
        guard length <= UInt64(size - 8) else {
            throw BackpropError.format("the header length \(length) is larger than the \(size - 8) bytes after it")
        }
        guard length <= UInt64(maxHeaderBytes) else {
            throw BackpropError.format("the header length \(length) is over the limit of \(maxHeaderBytes) bytes")
        }
        let headerLength = Int(length)
        guard headerLength >= 2 else { throw BackpropError.format("the header length \(length) is too small for a JSON object") }
        let json = try CheckedArray<UInt8>(zeros: headerLength)
        try source.read(8..<(8 + headerLength), into: json.pointer)
        guard json[0] == UInt8(ascii: "{") else { throw BackpropError.format("the header does not start with '{'") }

        let root: JSON
        do {
            var limits = JSONParser.Limits()
            limits.maxDepth = 3  // the root, a tensor's object, its shape array
            root = try JSONParser.parse(UnsafeRawBufferPointer(json.buffer), limits: limits)
        } catch let error as JSONError {
            throw BackpropError.format("the header is not valid JSON: \(error.message) (byte \(8 + error.offset) of the file)")
        }
        guard let members = root.members else { throw BackpropError.format("the header is not a JSON object") }

        let dataStart = 8 + headerLength
        let dataSize = size - dataStart
        var metadata: [String: String] = [:]
        var entries: [Entry] = []
        for member in members {
            if member.key == "__metadata__" {
                guard let pairs = member.value.members else { throw BackpropError.format("__metadata__ is not an object") }
                for pair in pairs {
                    guard let text = pair.value.stringValue else {
                        throw BackpropError.format("__metadata__ value \"\(clip(pair.key))\" is not a string")
                    }
                    metadata[pair.key] = text
                }
            } else {
                entries.append(try entry(member.key, member.value, dataSize: dataSize))
            }
        }

        // The ranges must tile the data: sorted by start, each begins where the last ended.
        entries.sort { ($0.range.lowerBound, $0.range.upperBound) < ($1.range.lowerBound, $1.range.upperBound) }
        var end = 0
        var previous: String?
        for e in entries {
            if e.range.lowerBound < end {
                throw BackpropError.format("tensors \"\(clip(previous ?? ""))\" and \"\(clip(e.name))\" overlap in the data")
            }
            if e.range.lowerBound > end {
                throw BackpropError.format("data bytes \(end)..<\(e.range.lowerBound) belong to no tensor")
            }
            end = e.range.upperBound
            previous = e.name
        }
        guard end == dataSize else {
            throw BackpropError.format("the tensors cover \(end) bytes of data, but \(dataSize) follow the header")
        }
        return Header(entries: entries, metadata: metadata, dataStart: dataStart)
    }

    private static func entry(_ name: String, _ value: JSON, dataSize: Int) throws -> Entry {
        let what = "tensor \"\(clip(name))\""
        guard let fields = value.members else { throw BackpropError.format("\(what) is not an object") }
        for field in fields where !["dtype", "shape", "data_offsets"].contains(field.key) {
            throw BackpropError.format("\(what) has an unknown field \"\(clip(field.key))\"")
        }
        guard let dtypeText = value["dtype"]?.stringValue else { throw BackpropError.format("\(what) has no dtype string") }
        guard let dtype = dtype(named: dtypeText) else {
            throw BackpropError.format("\(what) has dtype \"\(clip(dtypeText))\"; libbackprop reads F32 and F64")
        }
        guard let dims = value["shape"]?.arrayValue else { throw BackpropError.format("\(what) has no shape array") }
        guard dims.count <= Shape.maxRank else {
            throw BackpropError.format("\(what) has rank \(dims.count), more than \(Shape.maxRank)")
        }
        var shape: [Int] = []
        var count = 1
        for d in dims {
            guard let dim = d.intValue else { throw BackpropError.format("\(what) has a shape entry that is not a non-negative integer") }
            let (product, overflow) = count.multipliedReportingOverflow(by: dim)
            guard !overflow else { throw BackpropError.format("\(what) has too many elements") }
            shape.append(dim)
            count = product
        }
        let (byteCount, overflow) = count.multipliedReportingOverflow(by: dtype.size)
        guard !overflow else { throw BackpropError.format("\(what) has too many elements") }
        guard let offsets = value["data_offsets"]?.arrayValue, offsets.count == 2,
              let begin = offsets[0].intValue, let end = offsets[1].intValue else {
            throw BackpropError.format("\(what) needs data_offsets [begin, end] of non-negative integers")
        }
        guard begin <= end, end <= dataSize else {
            throw BackpropError.format("\(what) has data_offsets [\(begin), \(end)] outside the \(dataSize) bytes of data")
        }
        guard end - begin == byteCount else {
            throw BackpropError.format("\(what) has shape \(Shape.format(shape)) of \(dtypeText), \(byteCount) bytes, but data_offsets [\(begin), \(end)] span \(end - begin)")
        }
        return Entry(name: name, dtype: dtype, shape: shape, count: count, range: begin..<end)
    }

    /// A name or key shortened for messages (hostile files may hold long ones).
    static func clip(_ text: String) -> String {
        text.count <= 64 ? text : String(text.prefix(61)) + "..."
    }
}
