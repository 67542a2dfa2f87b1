// Text <-> token ids for the vocabularies GGUF files carry: byte-level BPE (`gpt2`) and SentencePiece BPE (`llama`).

public struct Tokenizer: Sendable, TokenDecoding {
    /// `tokenizer.ggml.model`.
    public enum Model: String, Sendable {
        /// Byte-level BPE with ranked merges and a pre-tokenizer.
        case gpt2
        /// SentencePiece BPE: score-ranked merges, `▁` for spaces, `<0xNN>` byte fallback.
        case llama
    }

    /// `tokenizer.ggml.token_type`, as llama.cpp numbers them.
    public enum TokenType: Int, Sendable {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    public let model: Model
    /// The split rule for `gpt2` vocabularies; nil for `llama`.
    public let preTokenizer: PreTokenizer?
    public let bosToken: Int32?
    public let eosToken: Int32?
    public let eotToken: Int32?
    public let unknownToken: Int32?
    /// Whether a prompt should start with BOS (`tokenizer.ggml.add_bos_token`, else the model type's default).
    public let addBOSByDefault: Bool
    /// SentencePiece: a space is put before the text at the start and after every special token.
    public let addSpacePrefix: Bool
    public let endOfGenerationTokens: Set<Int32>
    private let storage: Storage

    public var vocabSize: Int { storage.texts.count }

    /// Reads `tokenizer.ggml.*` from the file's metadata.
    public init(gguf: GGUFFile) throws(TokenizerError) {
        func ids(_ key: String) -> Int32? {
            guard let v = gguf.int("tokenizer.ggml.\(key)"), v >= 0, v <= Int(Int32.max) else { return nil }
            return Int32(v)
        }
        guard let model = gguf.string("tokenizer.ggml.model") else {
            throw TokenizerError(file: gguf.path, "missing metadata 'tokenizer.ggml.model'")
        }
        guard let tokens = gguf.stringArray("tokenizer.ggml.tokens") else {
            throw TokenizerError(file: gguf.path, "missing metadata 'tokenizer.ggml.tokens'")
        }
        do {
            try self.init(
                model: model,
                pre: gguf.string("tokenizer.ggml.pre"),
                tokens: tokens,
                tokenTypes: gguf.intArray("tokenizer.ggml.token_type"),
                merges: gguf.stringArray("tokenizer.ggml.merges"),
                scores: gguf.doubleArray("tokenizer.ggml.scores")?.map { Float($0) },
                bos: ids("bos_token_id"), eos: ids("eos_token_id"), eot: ids("eot_token_id"),
                eom: ids("eom_token_id"), unknown: ids("unknown_token_id"),
                addBOS: gguf.bool("tokenizer.ggml.add_bos_token"),
                addSpacePrefix: gguf.bool("tokenizer.ggml.add_space_prefix"))
        } catch {
            throw TokenizerError(file: gguf.path, error.problem)
        }
    }

    /// Builds a tokenizer from the raw vocabulary arrays (what the GGUF keys hold).
    public init(
        model: String, pre: String? = nil, tokens: [String], tokenTypes: [Int]? = nil,
        merges: [String]? = nil, scores: [Float]? = nil,
        bos: Int32? = nil, eos: Int32? = nil, eot: Int32? = nil, eom: Int32? = nil, unknown: Int32? = nil,
        addBOS: Bool? = nil, addSpacePrefix: Bool? = nil
    ) throws(TokenizerError) {
        guard let kind = Model(rawValue: model) else {
            throw TokenizerError("unsupported tokenizer model '\(model)' (supported: gpt2, llama)")
        }
        guard !tokens.isEmpty else { throw TokenizerError("'tokenizer.ggml.tokens' is empty") }
        let n = tokens.count
        if let tokenTypes, tokenTypes.count != n {
            throw TokenizerError("'tokenizer.ggml.token_type' has \(tokenTypes.count) entries for \(n) tokens")
        }
        if let scores, scores.count != n {
            throw TokenizerError("'tokenizer.ggml.scores' has \(scores.count) entries for \(n) tokens")
        }
        for (name, id) in [("bos", bos), ("eos", eos), ("eot", eot), ("eom", eom), ("unknown", unknown)] {
            if let id, Int(id) >= n {
                throw TokenizerError("'tokenizer.ggml.\(name)_token_id' \(id) is outside the vocabulary (\(n) tokens)")
            }
        }
        var types: [TokenType] = tokenTypes?.map { TokenType(rawValue: $0) ?? .normal }
            ?? [TokenType](repeating: .normal, count: n)
        if tokenTypes == nil && kind == .llama {
            // Without a type list, `<0xNN>` entries can only be the byte-fallback tokens.
            for (i, t) in tokens.enumerated() where Self.byteValue(t) != nil { types[i] = .byte }
        }

        var ids: [String: Int32] = [:]
        ids.reserveCapacity(n)
        // On duplicate texts the first id wins, as in llama.cpp.
        for (i, t) in tokens.enumerated() where ids[t] == nil { ids[t] = Int32(i) }

        var pieces: [UInt8] = []
        var offsets: [Int] = [0]
        offsets.reserveCapacity(n + 1)
        var byteTokens = [Int32](repeating: -1, count: 256)
        let split: PreTokenizer?
        let bpe: BytePairMerges?
        switch kind {
        case .gpt2:
            guard let merges else { throw TokenizerError("'tokenizer.ggml.merges' is required for a gpt2 vocabulary") }
            let name = pre ?? "default"
            guard let p = PreTokenizer(ggufName: name) else {
                throw TokenizerError("unsupported pre-tokenizer '\(name)' (supported: smollm, llama-bpe, qwen2, gpt-2, default and their aliases)")
            }
            split = p
            bpe = BytePairMerges(merges: merges, ids: ids)
            for b in 0..<256 { byteTokens[b] = ids[String(ByteLevel.byteToScalar[b])] ?? -1 }
            for (i, t) in tokens.enumerated() {
                switch types[i] {
                case .control, .userDefined, .unknown: pieces += t.utf8
                default: pieces += ByteLevel.decode(t) ?? Array(t.utf8)
                }
                offsets.append(pieces.count)
            }
        case .llama:
            split = nil
            bpe = nil
            for (i, t) in tokens.enumerated() {
                if types[i] == .byte, let b = Self.byteValue(t) {
                    if byteTokens[Int(b)] < 0 { byteTokens[Int(b)] = Int32(i) }
                    pieces.append(b)
                    offsets.append(pieces.count)
                    continue
                }
                switch types[i] {
                case .control, .unknown: pieces += t.utf8
                default: pieces += t.replacing("\u{2581}", with: " ").utf8
                }
                offsets.append(pieces.count)
            }
        }

        var specials: [SpecialTokenMatcher.Entry] = []
        for (i, t) in types.enumerated() where t == .control || t == .userDefined || t == .unknown {
            specials.append(.init(bytes: Array(tokens[i].utf8), id: Int32(i), always: t == .userDefined))
        }

        var eog = Set([eos, eot, eom].compactMap { $0 })
        for text in ["<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<end_of_turn>", "<|endoftext|>", "<|end|>",
                     "<|end_of_text|>", "<EOT>", "</s>"] {
            if let id = ids[text], types[Int(id)] == .control || types[Int(id)] == .userDefined { eog.insert(id) }
        }

        self.model = kind
        self.preTokenizer = split
        self.bosToken = bos
        self.eosToken = eos
        self.eotToken = eot
        self.unknownToken = unknown
        let llama3 = split == .llama3
        self.addBOSByDefault = addBOS ?? (kind == .llama || llama3)
        self.addSpacePrefix = kind == .llama ? (addSpacePrefix ?? true) : false
        self.endOfGenerationTokens = eog
        self.storage = Storage(
            texts: tokens, types: types, ids: ids, pieces: pieces, offsets: offsets, byteTokens: byteTokens,
            specials: SpecialTokenMatcher(specials), merges: bpe, ignoreMerges: llama3,
            spm: kind == .llama
                ? SentencePieceMerger(ids: ids, scores: scores ?? [Float](repeating: 0, count: n),
                                      byteTokens: byteTokens, unknown: unknown)
                : nil)
    }

    /// `<0xNN>` -> NN.
    private static func byteValue(_ text: String) -> UInt8? {
        let u = Array(text.utf8)
        guard u.count == 6, u[0] == 0x3C, u[1] == 0x30, u[2] == 0x78, u[5] == 0x3E else { return nil }
        return UInt8(String(decoding: u[3..<5], as: UTF8.self), radix: 16)
    }

    // MARK: Lookup

    /// The vocabulary entry as stored (byte-level or `▁` spelling), or nil outside the vocabulary.
    public func tokenText(_ token: Int32) -> String? {
        guard token >= 0, Int(token) < storage.texts.count else { return nil }
        return storage.texts[Int(token)]
    }

    public func tokenType(_ token: Int32) -> TokenType? {
        guard token >= 0, Int(token) < storage.types.count else { return nil }
        return storage.types[Int(token)]
    }

    /// The id whose vocabulary text is exactly `text`.
    public func token(forText text: String) -> Int32? { storage.ids[text] }

    /// Control, unknown and user-defined tokens (those matched whole in a prompt).
    public func isSpecial(_ token: Int32) -> Bool {
        switch tokenType(token) {
        case .control?, .unknown?, .userDefined?: true
        default: false
        }
    }

    // MARK: Decoding

    public func bytes(of token: Int32) -> [UInt8] {
        guard token >= 0, Int(token) < storage.texts.count else { return [] }
        return Array(storage.pieces[storage.offsets[Int(token)]..<storage.offsets[Int(token) + 1]])
    }

    /// The text of `tokens`; invalid UTF-8 (a cut-off character) becomes U+FFFD. For SentencePiece the space
    /// the encoder put before each text fragment is taken off again, so `decode(encode(s))` gives `s` back.
    /// `skipSpecial` leaves out control and unknown tokens (BOS, `<|im_end|>`, …).
    public func decode(_ tokens: [Int32], skipSpecial: Bool = false) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(tokens.count * 5)
        var afterSpecial = true
        let n = storage.texts.count
        storage.pieces.withUnsafeBufferPointer { pieces in
            storage.offsets.withUnsafeBufferPointer { offsets in
                for t in tokens {
                    guard t >= 0, Int(t) < n else { continue }
                    let type = storage.types[Int(t)]
                    let special = type == .control || type == .unknown || type == .userDefined
                    if skipSpecial && (type == .control || type == .unknown) {
                        afterSpecial = true
                        continue
                    }
                    var a = offsets[Int(t)]
                    let b = offsets[Int(t) + 1]
                    if addSpacePrefix && afterSpecial && !special && a < b && pieces[a] == 0x20 { a += 1 }
                    out.append(contentsOf: UnsafeBufferPointer(rebasing: pieces[a..<b]))
                    afterSpecial = special
                }
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: Encoding

    /// Token ids for `text`. With `parseSpecial`, control-token texts such as `<|im_start|>` become their
    /// single ids; user-defined tokens always do. `addBOS` puts the BOS token first (when the model has one).
    /// No special token is matched in, or reaching into, a `literal` UTF-8 range (sorted, disjoint): that text
    /// is tokenized as ordinary text, within the same fragment, so the ids around it are what they would be anyway.
    public func encode(_ text: String, addBOS: Bool, parseSpecial: Bool, literal: [Range<Int>] = []) -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(text.utf8.count / 3 + 2)
        if addBOS, let bos = bosToken { out.append(bos) }
        var scratch = Scratch()
        var text = text
        text.withUTF8 { buf in
            var fragment = 0
            var afterSpecial = true
            if !storage.specials.isEmpty {
                var i = 0
                var nextLiteral = 0
                while i < buf.count {
                    while nextLiteral < literal.count && literal[nextLiteral].upperBound <= i { nextLiteral += 1 }
                    var limit = buf.count
                    if nextLiteral < literal.count {
                        let range = literal[nextLiteral]
                        if range.lowerBound <= i {
                            i = range.upperBound
                            continue
                        }
                        limit = range.lowerBound
                    }
                    guard let e = storage.specials.match(UnsafeBufferPointer(rebasing: buf[..<limit]), at: i,
                                                         parseSpecial: parseSpecial) else {
                        i += 1
                        continue
                    }
                    if fragment < i {
                        encodeFragment(UnsafeBufferPointer(rebasing: buf[fragment..<i]), afterSpecial, &out, &scratch)
                    }
                    out.append(e.id)
                    i += e.bytes.count
                    fragment = i
                    afterSpecial = true
                }
            }
            if fragment < buf.count {
                encodeFragment(UnsafeBufferPointer(rebasing: buf[fragment...]), afterSpecial, &out, &scratch)
            }
        }
        return out
    }

    /// Reused buffers, so encoding a long prompt does not allocate per word.
    private struct Scratch {
        var text = ScalarText()
        var ends: [Int] = []
        var symbols: [Int32] = []
        var ranks: [UInt32] = []
        var merged: [Int32] = []
        var escaped: [UInt8] = []
    }

    private func encodeFragment(
        _ bytes: UnsafeBufferPointer<UInt8>, _ afterSpecial: Bool, _ out: inout [Int32], _ s: inout Scratch
    ) {
        if let spm = storage.spm {
            s.escaped.removeAll(keepingCapacity: true)
            if addSpacePrefix && afterSpecial { s.escaped += [0xE2, 0x96, 0x81] }
            for b in bytes {
                if b == 0x20 { s.escaped += [0xE2, 0x96, 0x81] } else { s.escaped.append(b) }
            }
            spm.encode(s.escaped, into: &out)
            return
        }
        guard let pre = preTokenizer, let merges = storage.merges else { return }
        s.text.load(bytes)
        pre.split(s.text, into: &s.ends)
        var start = 0
        for e in s.ends {
            let word = UnsafeBufferPointer(rebasing: bytes[s.text.offsets[start]..<s.text.offsets[e]])
            start = e
            if storage.ignoreMerges, word.count > 1, let id = storage.ids[ByteLevel.encode(word)] {
                out.append(id)
                continue
            }
            s.symbols.removeAll(keepingCapacity: true)
            for b in word { s.symbols.append(storage.byteTokens[Int(b)]) }
            merges.apply(&s.symbols, ranks: &s.ranks, merged: &s.merged)
            for id in s.symbols {
                if id >= 0 { out.append(id) } else if let u = unknownToken { out.append(u) }
            }
        }
    }

    /// The immutable tables, shared by every copy of the tokenizer.
    private final class Storage: Sendable {
        let texts: [String]
        let types: [TokenType]
        let ids: [String: Int32]
        /// Raw bytes of every token, back to back; token i is pieces[offsets[i]..<offsets[i+1]].
        let pieces: [UInt8]
        let offsets: [Int]
        /// gpt2: the token for each single byte; llama: the `<0xNN>` token.
        let byteTokens: [Int32]
        let specials: SpecialTokenMatcher
        let merges: BytePairMerges?
        /// Llama 3 looks a whole pre-token up before merging.
        let ignoreMerges: Bool
        let spm: SentencePieceMerger?

        init(texts: [String], types: [TokenType], ids: [String: Int32], pieces: [UInt8], offsets: [Int],
             byteTokens: [Int32], specials: SpecialTokenMatcher, merges: BytePairMerges?, ignoreMerges: Bool,
             spm: SentencePieceMerger?) {
            self.texts = texts
            self.types = types
            self.ids = ids
            self.pieces = pieces
            self.offsets = offsets
            self.byteTokens = byteTokens
            self.specials = specials
            self.merges = merges
            self.ignoreMerges = ignoreMerges
            self.spm = spm
        }
    }
}
