// A JSON value written back as it came (the Responses object echoes the request's tools and text format).

extension JSONValue: Encodable {
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let x):
            if x.rounded() == x && abs(x) < 9.0e15 { try c.encode(Int(x)) } else { try c.encode(x) }
        case .string(let s): try c.encode(s)
        case .array(let items): try c.encode(items)
        case .object(let object): try c.encode(object)
        }
    }
}
