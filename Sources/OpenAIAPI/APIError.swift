// An OpenAI-shaped error: HTTP status plus `{"error": {"message", "type", "param", "code"}}`. Handlers throw it;
// it renders itself where the router catches it.
import HTTPServer
import Scheduling
import Foundation
import Inference

public struct APIError: Error, Sendable, Equatable {
    public var status: Int
    public var message: String
    public var type: String
    public var param: String?
    public var code: String?
    public var headers: [String: String] = [:]

    public init(status: Int, message: String, type: String, param: String? = nil, code: String? = nil,
                headers: [String: String] = [:]) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers
    }

    public static func invalid(_ message: String, param: String? = nil, code: String? = nil) -> APIError {
        APIError(status: 400, message: message, type: "invalid_request_error", param: param, code: code)
    }

    public static func unsupported(_ message: String, param: String) -> APIError {
        APIError(status: 400, message: message, type: "invalid_request_error", param: param, code: "unsupported_parameter")
    }

    public static func modelNotFound(_ model: String) -> APIError {
        APIError(status: 404, message: "The model '\(model)' does not exist; this server serves one model (see /v1/models).",
                 type: "invalid_request_error", param: "model", code: "model_not_found")
    }

    public static let unauthorized = APIError(
        status: 401, message: "Missing or incorrect API key; send it as 'Authorization: Bearer <key>'.",
        type: "invalid_request_error", code: "invalid_api_key")

    public static func notReady(_ why: String) -> APIError {
        APIError(status: 503, message: why, type: "service_unavailable", code: "service_unavailable")
    }

    public static func contextLengthExceeded(promptTokens: Int, maxTokens: Int?, contextLength: Int) -> APIError {
        let message: String
        if let maxTokens {
            message = "This model's maximum context length is \(contextLength) tokens. However, you requested "
                + "\(promptTokens + maxTokens) tokens (\(promptTokens) in the prompt, \(maxTokens) for the completion). "
                + "Please reduce the prompt or max_tokens."
        } else {
            message = "This model's maximum context length is \(contextLength) tokens. However, your prompt has "
                + "\(promptTokens) tokens, which leaves no room for a completion. Please reduce the prompt."
        }
        return APIError(status: 400, message: message, type: "invalid_request_error",
                        param: maxTokens == nil ? "messages" : "max_tokens", code: "context_length_exceeded")
    }

    /// The HTTP layer's own refusals (and errors that cannot render themselves, as 500), in this shape: the
    /// server's `errorResponse`.
    public static func http(status: Int, message: String) -> APIError {
        let code: String
        switch status {
        case 404: code = "not_found"
        case 405: code = "method_not_allowed"
        case 413: code = "request_too_large"
        case 415: code = "unsupported_media_type"
        case 431: code = "request_header_fields_too_large"
        case 500: return APIError(status: 500, message: message, type: "server_error", code: "internal_error")
        default: code = "http_\(status)"
        }
        return APIError(status: status, message: message, type: "invalid_request_error", code: code)
    }

    public static let httpErrorResponse: @Sendable (Int, String) -> HTTPResponse = { status, message in
        APIError.http(status: status, message: message).response
    }

    /// How a scheduler failure reaches the client.
    public static func from(_ failure: JobFailure) -> APIError {
        switch failure {
        case .tooLarge(let cost, let capacity):
            return APIError(status: 400, message: "The request needs \(cost) KV-cache blocks (prompt + max_tokens) but the server's "
                            + "whole capacity is \(capacity) blocks. Reduce the prompt or max_tokens.",
                            type: "invalid_request_error", param: "max_tokens", code: "context_length_exceeded")
        case .queueFull(let retry):
            return APIError(status: 429, message: "The server is at capacity and its queue is full; retry after \(retry) s.",
                            type: "rate_limit_exceeded", code: "queue_full", headers: ["Retry-After": String(max(1, retry))])
        case .evicted(let retry):
            return APIError(status: 429, message: "The request was pushed out of a full queue by higher-priority work; retry after \(retry) s.",
                            type: "rate_limit_exceeded", code: "evicted", headers: ["Retry-After": String(max(1, retry))])
        case .queueTimeout(let waited):
            return APIError(status: 503, message: "The request waited \(String(format: "%.1f", waited)) s in the queue without "
                            + "being admitted (queue_timeout).", type: "queue_timeout", code: "queue_timeout")
        case .shuttingDown:
            // Another replica can take it at once: a gateway or the openai client retries after a second.
            return APIError(status: 503, message: "The server is shutting down; retry, another replica may serve it.",
                            type: "service_unavailable", code: "shutting_down", headers: ["Retry-After": "1"])
        case .cancelled:
            return APIError(status: 499, message: "The request was cancelled.", type: "cancelled", code: "cancelled")
        case .invalid(let why):
            return APIError.invalid("The request cannot be served: \(why).", param: "prompt")
        case .engine(let why):
            return APIError(status: 500, message: "The inference engine failed: \(why)", type: "server_error", code: "engine_error")
        }
    }
}

extension APIError: HTTPResponseError {
    public var responseHeaders: [(String, String)] {
        // Sorted: a dictionary's order would make the answer's bytes differ between runs.
        [("Content-Type", "application/json")] + headers.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    public var responseBody: [UInt8] { OpenAICodec.errorJSON(self) }
}
