/// How a CSV file of training data is laid out.
public struct CSVOptions: Sendable, Equatable {
    /// The byte between fields: ',' by default; ';', '\t', '|' and the like work too.
    public var delimiter: UInt8 = UInt8(ascii: ",")
    /// Whether the first line names the columns (it is then skipped, but its column count must
    /// match the data's).
    public var hasHeader = true
    /// The column holding the label or target: 0-based, negative counts from the end (-1, the
    /// default, is the last column); nil when every column is a feature.
    public var labelColumn: Int? = -1
    /// Files larger than this many bytes are refused (1 GiB by default).
    public var maxBytes = 1 << 30

    public init() {}

    func validate() throws {
        let d = delimiter
        let refused: [UInt8] = Array("0123456789.+-eE\"\r\n".utf8) + [0]
        guard !refused.contains(d) else {
            throw BackpropError.invalidArgument("the delimiter 0x\(String(d, radix: 16)) cannot separate numbers")
        }
        guard maxBytes >= 0 else { throw BackpropError.invalidArgument("max bytes must not be negative") }
    }
}

/// A table of training data read from a file: one row per sample, the features as float32 and,
/// when the file has one, the label column.
///
/// The reader accepts numbers only (optionally signed, with a fraction and an exponent, as
/// `[+-]?(digits[.digits]|.digits)([eE][+-]?digits)`; spaces around a field and one pair of
/// double quotes around it are allowed). Lines end in "\n" or "\r\n"; blank lines are skipped;
/// a UTF-8 byte order mark at the start is ignored. Anything else is `BackpropError.format`
/// with the line number (1-based, counting every line of the file) and the column.
///
/// The values live in memory whose allocation may fail (`BackpropError.outOfMemory`), since a
/// file decides their size; the `into:` forms copy them out without allocating.
public final class Dataset {
    public let rows: Int
    public let featureCount: Int
    private let featureValues: CheckedArray<Float>
    private let targetValues: CheckedArray<Double>?
    /// The file line each row came from, for messages about labels.
    private let lineNumbers: CheckedArray<Int>

    /// rows × featureCount values, row-major (a copy).
    public var features: [Float] { Array(featureValues.buffer) }
    /// The label column, one value per row, or nil when the file has none (a copy).
    public var targets: [Double]? { targetValues.map { Array($0.buffer) } }

    fileprivate init(rows: Int, featureCount: Int, features: CheckedArray<Float>, targets: CheckedArray<Double>?,
                     lineNumbers: CheckedArray<Int>) {
        self.rows = rows
        self.featureCount = featureCount
        featureValues = features
        targetValues = targets
        self.lineNumbers = lineNumbers
    }

    /// Reads a CSV file. Errors: `io` (cannot open or read), `format` (too large, malformed),
    /// `invalidArgument` (bad options, a label column outside the file's columns).
    public static func loadCSV(path: String, options: CSVOptions = CSVOptions()) throws -> Dataset {
        try options.validate()
        let file = try FileSource(path: path)
        guard file.count <= options.maxBytes else {
            throw BackpropError.format("\(path) is \(file.count) bytes, over the limit of \(options.maxBytes)")
        }
        let bytes = try file.readAll()
        return try parseCSV(UnsafeRawBufferPointer(bytes.buffer), options: options)
    }

    /// Parses CSV text held in memory, as `loadCSV` does a file's.
    public static func parseCSV(_ bytes: UnsafeRawBufferPointer, options: CSVOptions = CSVOptions()) throws -> Dataset {
        try options.validate()
        guard bytes.count <= options.maxBytes else {
            throw BackpropError.format("the data is \(bytes.count) bytes, over the limit of \(options.maxBytes)")
        }
        var parser = try CSVParser(bytes: bytes, options: options)
        return try parser.parse()
    }

    /// Copies the features (rows × featureCount, row-major) into `destination`, which must hold
    /// exactly that many.
    public func features(into destination: UnsafeMutableBufferPointer<Float>) throws {
        try checkRoom(destination, featureValues.count, "features (\(rows) rows × \(featureCount))")
        _ = destination.update(fromContentsOf: featureValues.buffer)
    }

    /// The label column as class indices: each value must be a whole number in Int32's range.
    public func labels() throws -> [Int32] {
        var labels = [Int32](repeating: 0, count: rows)
        try labels.withUnsafeMutableBufferPointer { try self.labels(into: $0) }
        return labels
    }

    /// `labels()` into `destination`, which must hold `rows` values; on failure nothing is
    /// written.
    public func labels(into destination: UnsafeMutableBufferPointer<Int32>) throws {
        try convertTargets(into: destination, "labels") { row, value in
            guard value == value.rounded(.towardZero) else {
                throw BackpropError.format("line \(lineNumbers[row]): label \(value) is not a whole number")
            }
            guard let label = Int32(exactly: value) else {
                throw BackpropError.format("line \(lineNumbers[row]): label \(value) is out of the int32 range")
            }
            return label
        }
    }

    /// The label column as float32 targets (for regression): each must fit in a float.
    public func floatTargets() throws -> [Float] {
        var targets = [Float](repeating: 0, count: rows)
        try targets.withUnsafeMutableBufferPointer { try floatTargets(into: $0) }
        return targets
    }

    /// `floatTargets()` into `destination`, which must hold `rows` values; on failure nothing
    /// is written.
    public func floatTargets(into destination: UnsafeMutableBufferPointer<Float>) throws {
        try convertTargets(into: destination, "targets") { row, value in
            let single = Float(value)
            guard single.isFinite else {
                throw BackpropError.format("line \(lineNumbers[row]): target \(value) does not fit in float32")
            }
            return single
        }
    }

    /// Converts every value of the label column, then writes them all: a value that does not
    /// convert leaves `destination` untouched.
    private func convertTargets<T>(into destination: UnsafeMutableBufferPointer<T>, _ what: String,
                                   _ convert: (_ row: Int, Double) throws -> T) throws {
        guard let targetValues else {
            throw BackpropError.invalidArgument("the dataset has no label column (it was read with none)")
        }
        try checkRoom(destination, rows, "\(what) (one per row)")
        for row in 0..<rows { _ = try convert(row, targetValues[row]) }
        for row in 0..<rows { destination[row] = try convert(row, targetValues[row]) }
    }

    private func checkRoom<T>(_ destination: UnsafeMutableBufferPointer<T>, _ count: Int, _ what: String) throws {
        guard destination.count == count else {
            throw BackpropError.invalidArgument("expected room for \(count) \(what), got \(destination.count)")
        }
    }
}

private struct CSVParser {
    let bytes: UnsafeRawBufferPointer
    let options: CSVOptions
    var columns: Int?
    var labelIndex: Int?
    let features: CheckedArray<Float>
    let targets: CheckedArray<Double>
    let lineNumbers: CheckedArray<Int>

    init(bytes: UnsafeRawBufferPointer, options: CSVOptions) throws {
        self.bytes = bytes
        self.options = options
        features = try CheckedArray()
        targets = try CheckedArray()
        lineNumbers = try CheckedArray()
    }

    mutating func parse() throws -> Dataset {
        var position = 0
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { position = 3 }
        var line = 0
        var headerPending = options.hasHeader
        while position < bytes.count {
            line += 1
            var end = position
            while end < bytes.count, bytes[end] != 0x0A { end += 1 }
            var lineEnd = end
            if lineEnd > position, bytes[lineEnd - 1] == 0x0D { lineEnd -= 1 }
            let text = position..<lineEnd
            position = end + 1
            if isBlank(text) { continue }
            if headerPending {
                headerPending = false
                try setColumns(try headerColumns(text, line: line), line: line)
                continue
            }
            try parseRow(text, line: line)
        }
        guard lineNumbers.count > 0 else {
            throw BackpropError.format("no data rows\(options.hasHeader ? " after the header" : "")")
        }
        let featureCount = columns! - (labelIndex == nil ? 0 : 1)
        return Dataset(rows: lineNumbers.count, featureCount: featureCount, features: features,
                       targets: labelIndex == nil ? nil : targets, lineNumbers: lineNumbers)
    }

    private func isBlank(_ range: Range<Int>) -> Bool {
        range.allSatisfy { bytes[$0] == 0x20 || bytes[$0] == 0x09 }
    }

    /// The number of fields of a header line, where names may be quoted ("a,b" is one field).
    private func headerColumns(_ range: Range<Int>, line: Int) throws -> Int {
        var count = 1
        var quoted = false
        for i in range {
            let b = bytes[i]
            if b == UInt8(ascii: "\"") {
                quoted.toggle()
            } else if b == options.delimiter && !quoted {
                count += 1
            }
        }
        guard !quoted else { throw BackpropError.format("line \(line): unterminated quote in the header") }
        return count
    }

    /// Fixes the column count (from the header or the first row) and the label column.
    private mutating func setColumns(_ count: Int, line: Int) throws {
        columns = count
        guard let label = options.labelColumn else { return }
        let index = label < 0 ? count + label : label
        guard index >= 0, index < count else {
            throw BackpropError.invalidArgument("label column \(label) is out of range: line \(line) has \(count) columns")
        }
        guard count >= 2 else {
            throw BackpropError.format("line \(line) has only the label column; at least one feature column is needed")
        }
        labelIndex = index
    }

    private mutating func parseRow(_ range: Range<Int>, line: Int) throws {
        var fieldCount = 1
        for i in range where bytes[i] == options.delimiter { fieldCount += 1 }
        if columns == nil { try setColumns(fieldCount, line: line) }
        guard fieldCount == columns else {
            throw BackpropError.format("line \(line) has \(fieldCount) columns, expected \(columns!)\(options.hasHeader ? " (as the header)" : " (as the first line)")")
        }
        var start = range.lowerBound
        for column in 0..<fieldCount {
            var end = start
            while end < range.upperBound, bytes[end] != options.delimiter { end += 1 }
            let value = try number(start..<end, line: line, column: column)
            if column == labelIndex {
                try targets.append(value)
            } else {
                let single = Float(value)
                guard single.isFinite else {
                    throw BackpropError.format("line \(line), column \(column + 1): \(value) does not fit in float32")
                }
                try features.append(single)
            }
            start = end + 1
        }
        try lineNumbers.append(line)
    }

    private func isSpace(_ b: UInt8) -> Bool {
        (b == 0x20 || b == 0x09) && b != options.delimiter
    }

    private func number(_ range: Range<Int>, line: Int, column: Int) throws -> Double {
        var lo = range.lowerBound, hi = range.upperBound
        while lo < hi, isSpace(bytes[lo]) { lo += 1 }
        while hi > lo, isSpace(bytes[hi - 1]) { hi -= 1 }
        if hi - lo >= 2, bytes[lo] == UInt8(ascii: "\""), bytes[hi - 1] == UInt8(ascii: "\"") {
            lo += 1
            hi -= 1
        }
        let where_ = "line \(line), column \(column + 1)"
        guard lo < hi else { throw BackpropError.format("\(where_): empty field") }
        let field = UnsafeRawBufferPointer(rebasing: bytes[lo..<hi])
        guard isNumber(field) else {
            let shown = String(decoding: field.prefix(40), as: UTF8.self)
            throw BackpropError.format("\(where_): \"\(shown)\(field.count > 40 ? "..." : "")\" is not a number")
        }
        guard let value = Double(String(decoding: field, as: UTF8.self)), value.isFinite else {
            throw BackpropError.format("\(where_): \(String(decoding: field.prefix(40), as: UTF8.self)) is out of the range of a double")
        }
        return value
    }

    /// [+-]? (digits (. digits?)? | . digits) ([eE] [+-]? digits)?
    private func isNumber(_ s: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        func digits() -> Int {
            let first = i
            while i < s.count, s[i] >= UInt8(ascii: "0"), s[i] <= UInt8(ascii: "9") { i += 1 }
            return i - first
        }
        if i < s.count, s[i] == UInt8(ascii: "+") || s[i] == UInt8(ascii: "-") { i += 1 }
        var mantissa = digits()
        if i < s.count, s[i] == UInt8(ascii: ".") {
            i += 1
            mantissa += digits()
        }
        guard mantissa > 0 else { return false }
        if i < s.count, s[i] == UInt8(ascii: "e") || s[i] == UInt8(ascii: "E") {
            i += 1
            if i < s.count, s[i] == UInt8(ascii: "+") || s[i] == UInt8(ascii: "-") { i += 1 }
            guard digits() > 0 else { return false }
        }
        return i == s.count
    }
}
