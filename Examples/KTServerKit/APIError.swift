import Foundation
import HTTPTypes
import Hummingbird
import KTConfig
import KTDB
import KTGraph
import KTProvision
import Logging

/// An error a route answers with: an HTTP status and a `{"detail": "..."}` body.
struct APIError: Error, Sendable {
    var status: HTTPResponse.Status
    var detail: String
    var headers: HTTPFields = [:]

    init(_ status: HTTPResponse.Status, _ detail: String, headers: HTTPFields = [:]) {
        self.status = status
        self.detail = detail
        self.headers = headers
    }

    static let unauthorized = APIError(.unauthorized, "Not authenticated", headers: [.wwwAuthenticate: "Bearer"])
    static let forbidden = APIError(.forbidden, "Not enough permissions")
    static let graphNotFound = APIError(.notFound, "Graph not found")

    /// Maps an SDK error to the status the API documents; anything unexpected is a 500 whose
    /// body says nothing about internals (the detail goes to the log at debug level).
    static func from(_ error: any Error, logger: Logger) -> APIError {
        switch error {
        case let error as APIError:
            return error
        case let error as KTDBError:
            if error.sqlState == GraphProvisioner.writesPausedSQLState {
                // The graph's writes are paused for the last step of a move.
                return APIError(.serviceUnavailable, "The graph is moving to another database; retry shortly", headers: [.retryAfter: "2"])
            }
            switch error.code {
            case .invalidArgument, .invalidSchemaName: return APIError(.badRequest, error.message)
            case .poolTimeout, .connectionFailed, .poolClosed: return APIError(.serviceUnavailable, "Database unavailable")
            default: break
            }
        case let error as KTProvisionError:
            switch error.code {
            case .notFound: return APIError(.notFound, error.message)
            case .conflict: return APIError(.conflict, error.message)
            case .invalidSlug: return APIError(.unprocessableContent, error.message)
            case .reservedSlug, .unknownConnection, .invalidState, .reservedKey, .invalidArgument, .lastAdmin: return APIError(.badRequest, error.message)
            default: break
            }
        case let error as KTGraphError:
            switch error.code {
            case .notFound: return APIError(.notFound, error.message)
            case .invalidArgument, .invalidParentChain: return APIError(.unprocessableContent, error.message)
            case .embedding:
                logger.debug("embedding failed", metadata: ["kt.error": "\(error.message)"])
                return APIError(.badGateway, "Embedding service unavailable")
            default: break
            }
        case let error as HTTPError:
            return APIError(error.status, error.body ?? error.status.reasonPhrase)
        default:
            break
        }
        logger.debug("request failed", metadata: ["kt.error": "\(String(reflecting: error))"])
        return APIError(.internalServerError, "Internal server error")
    }
}

/// Turns every error, including the router's own 404, into a JSON `{"detail": ...}` body.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let apiError = APIError.from(error, logger: context.logger)
            var response = try JSONBody.response(["detail": apiError.detail], status: apiError.status)
            response.headers.append(contentsOf: apiError.headers)
            return response
        }
    }
}

/// JSON encoding and decoding of bodies.
enum JSONBody {
    static func response(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(value)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func raw(_ json: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: json)))
    }

    /// Decodes a request body; a missing, oversized or malformed body is a 422, like the original's validation.
    static func decode<T: Decodable>(_ type: T.Type, from request: Request) async throws -> T {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: 1 << 20)
        } catch {
            throw APIError(.contentTooLarge, "Request body too large")
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView))
        } catch let error as APIError {
            throw error
        } catch let DecodingError.keyNotFound(key, _) {
            throw APIError(.unprocessableContent, "field '\(key.stringValue)' is required")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw APIError(.unprocessableContent, "field '\(path)' has the wrong type")
        } catch {
            throw APIError(.unprocessableContent, "the body is not valid JSON for this request")
        }
    }
}
