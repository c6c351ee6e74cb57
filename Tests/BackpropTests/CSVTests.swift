import Testing
@testable import Backprop

/// CSV data files: what is accepted, and errors that name the line and column.
@Suite struct CSVTests {
    func parse(_ text: String, _ options: CSVOptions = CSVOptions()) throws -> Dataset {
        try Array(text.utf8).withUnsafeBytes { try Dataset.parseCSV($0, options: options) }
    }

    /// The format error's message, or nil when parsing succeeds or fails otherwise.
    func formatMessage(_ text: String, _ options: CSVOptions = CSVOptions()) -> String? {
        do {
            _ = try parse(text, options)
        } catch BackpropError.format(let message) {
            return message
        } catch {
            return nil
        }
        return nil
    }

    @Test func featuresAndLabelsComeOutRowMajor() throws {
        let data = try parse("a,b,y\n1,2,0\n-3.5,4e-1,1\n+.5,7.,2\n")
        #expect(data.rows == 3 && data.featureCount == 2)
        #expect(data.features == [1, 2, -3.5, 0.4, 0.5, 7])
        #expect(try data.labels() == [0, 1, 2])
        #expect(try data.floatTargets() == [0, 1, 2])
    }

    @Test func optionsChooseTheDelimiterHeaderAndLabelColumn() throws {
        var options = CSVOptions()
        options.delimiter = UInt8(ascii: "|")
        options.hasHeader = false
        options.labelColumn = 1
        let data = try parse("\u{FEFF}1| 9 |2\r\n\r\n  \n\"3\"|8|4", options)
        #expect(data.rows == 2 && data.features == [1, 2, 3, 4])
        #expect(try data.labels() == [9, 8])

        options = CSVOptions()
        options.labelColumn = nil
        let all = try parse("a,b\n1,2\n", options)
        #expect(all.featureCount == 2 && all.targets == nil)
        #expect(throws: BackpropError.self) { try all.labels() }
    }

    @Test func malformedLinesNameTheirLineAndColumn() {
        #expect(formatMessage("a,b,y\n1,2,0\n3,x,1\n")?.contains("line 3, column 2") == true)
        #expect(formatMessage("a,b,y\n1,2,0\n\n3,1\n")?.contains("line 4 has 2 columns, expected 3") == true)
        #expect(formatMessage("a,b,y\n1,,0\n")?.contains("line 2, column 2: empty field") == true)
        for bad in ["nan", "inf", "-infinity", "1e999", "0x1p3", "1.2.3", "--1", "1e", "e5", ".", "+"] {
            let message = formatMessage("a,y\n\(bad),0\n")
            #expect(message?.contains("line 2, column 1") == true, "\(bad): \(message ?? "accepted")")
        }
        #expect(formatMessage("a,y\n1e39,0\n")?.contains("float32") == true)
        #expect(formatMessage("")?.contains("no data rows") == true)
        #expect(formatMessage("a,y\n")?.contains("no data rows") == true)
        var small = CSVOptions()
        small.maxBytes = 4
        #expect(formatMessage("a,y\n1,2\n", small)?.contains("over the limit") == true)
    }

    @Test func labelsMustBeWholeInt32Numbers() throws {
        let data = try parse("a,y\n1,0\n2,-2.5\n")
        #expect(throws: BackpropError.format("line 3: label -2.5 is not a whole number")) { try data.labels() }
        #expect(try data.floatTargets() == [0, -2.5])
        #expect(throws: BackpropError.self) { try parse("a,y\n1,2147483648\n").labels() }
        #expect(try parse("a,y\n1,-2147483648\n").labels() == [Int32.min])
    }

    @Test func aLabelThatDoesNotConvertLeavesTheDestinationUntouched() throws {
        let data = try parse("a,y\n1,0\n2,1\n3,0.5\n")
        var labels: [Int32] = [7, 7, 7]
        #expect(throws: BackpropError.format("line 4: label 0.5 is not a whole number")) {
            try labels.withUnsafeMutableBufferPointer { try data.labels(into: $0) }
        }
        #expect(labels == [7, 7, 7])
        var wrongSize: [Float] = [7, 7]
        #expect(throws: BackpropError.self) {
            try wrongSize.withUnsafeMutableBufferPointer { try data.floatTargets(into: $0) }
        }
        #expect(wrongSize == [7, 7])
    }

    @Test func badOptionsAreInvalidArguments() {
        var options = CSVOptions()
        options.labelColumn = 3
        #expect(throws: BackpropError.self) { try parse("a,b,y\n1,2,3\n", options) }
        #expect(formatMessage("a,b,y\n1,2,3\n", options) == nil)
        options = CSVOptions()
        options.delimiter = UInt8(ascii: "e")
        #expect(throws: BackpropError.self) { try parse("a\n1\n", options) }
    }
}
