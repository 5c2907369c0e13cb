//go:build wasip1

package httpwasm

// The http_handler host functions, as http-wasm's http-handler-abi.md declares them.

//go:wasmimport http_handler enable_features
func enableFeatures(features uint32) uint32

//go:wasmimport http_handler get_config
func getConfig(buf, limit uint32) uint32

//go:wasmimport http_handler log_enabled
func logEnabled(level int32) uint32

//go:wasmimport http_handler log
func logMessage(level int32, ptr, size uint32)

//go:wasmimport http_handler get_method
func getMethod(buf, limit uint32) uint32

//go:wasmimport http_handler set_method
func setMethod(ptr, size uint32)

//go:wasmimport http_handler get_uri
func getURI(buf, limit uint32) uint32

//go:wasmimport http_handler set_uri
func setURI(ptr, size uint32)

//go:wasmimport http_handler get_protocol_version
func getProtocolVersion(buf, limit uint32) uint32

//go:wasmimport http_handler get_header_names
func getHeaderNames(kind, buf, limit uint32) uint64

//go:wasmimport http_handler get_header_values
func getHeaderValues(kind, name, nameLen, buf, limit uint32) uint64

//go:wasmimport http_handler set_header_value
func setHeaderValue(kind, name, nameLen, value, valueLen uint32)

//go:wasmimport http_handler add_header_value
func addHeaderValue(kind, name, nameLen, value, valueLen uint32)

//go:wasmimport http_handler remove_header
func removeHeader(kind, name, nameLen uint32)

//go:wasmimport http_handler read_body
func readBody(kind, buf, limit uint32) uint64

//go:wasmimport http_handler write_body
func writeBody(kind, ptr, size uint32)

//go:wasmimport http_handler get_status_code
func getStatusCode() uint32

//go:wasmimport http_handler set_status_code
func setStatusCode(code uint32)

//go:wasmimport http_handler get_source_addr
func getSourceAddr(buf, limit uint32) uint32
