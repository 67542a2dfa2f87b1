// The real OpenAI routes over a hand-driven backend, driven without a socket: where every route test starts.
import HTTPServer
import TestSupport
@testable import OpenAIAPI

/// `OpenAIService`'s routes, ready on `backend` and answering errors as the server does; `extra` adds routes or
/// middleware beside them.
func client(_ backend: FakeBackend, apiKey: String? = nil,
            extra: (inout Router, OpenAIService) -> Void = { _, _ in }) -> RouterTestClient {
    let service = OpenAIService(settings: .init(servedModelName: "tiny", apiKey: apiKey))
    service.ready(backend: backend)
    var router = Router()
    service.register(on: &router)
    extra(&router, service)
    return RouterTestClient(router: router, errorResponse: APIError.httpErrorResponse)
}
