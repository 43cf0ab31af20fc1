//! The `pg_query` crate reports a parse error's message but drops its
//! position. The position is what lets a user jump to a bad migration line,
//! so on the error path only, the same libpg_query (linked by `pg_query`) is
//! asked again through its C entry point.

use std::ffi::{CString, c_char, c_int};

#[repr(C)]
struct PgQueryError {
    message: *mut c_char,
    funcname: *mut c_char,
    filename: *mut c_char,
    lineno: c_int,
    cursorpos: c_int,
    context: *mut c_char,
}

#[repr(C)]
struct PgQueryParseResult {
    parse_tree: *mut c_char,
    stderr_buffer: *mut c_char,
    error: *mut PgQueryError,
}

#[repr(C)]
struct PgQueryPlpgsqlParseResult {
    plpgsql_funcs: *mut c_char,
    error: *mut PgQueryError,
}

unsafe extern "C" {
    fn pg_query_parse(input: *const c_char) -> PgQueryParseResult;
    fn pg_query_free_parse_result(result: PgQueryParseResult);
    fn pg_query_parse_plpgsql(input: *const c_char) -> PgQueryPlpgsqlParseResult;
    fn pg_query_free_plpgsql_parse_result(result: PgQueryPlpgsqlParseResult);
}

/// libpg_query's description of a PL/pgSQL function, as the JSON text it
/// writes (the `pg_query` crate insists on parsing it, and it is not always
/// valid JSON).
pub(crate) fn plpgsql_json(definition: &str) -> Result<String, String> {
    let input = CString::new(definition).map_err(|e| e.to_string())?;
    // SAFETY: `input` outlives the call; the result's strings are copied
    // before the result is handed back to libpg_query to free, exactly once.
    unsafe {
        let result = pg_query_parse_plpgsql(input.as_ptr());
        let out = if !result.error.is_null() {
            let message = std::ffi::CStr::from_ptr((*result.error).message);
            Err(message.to_string_lossy().into_owned())
        } else if result.plpgsql_funcs.is_null() {
            Err("no result".into())
        } else {
            Ok(std::ffi::CStr::from_ptr(result.plpgsql_funcs).to_string_lossy().into_owned())
        };
        pg_query_free_plpgsql_parse_result(result);
        out
    }
}

/// Byte offset of the parse error in `text`, if the parser gives one.
pub(crate) fn error_offset(text: &str) -> Option<usize> {
    let input = CString::new(text).ok()?;
    // SAFETY: `input` is a valid NUL-terminated string that outlives the
    // call; the result is read only before being handed back to libpg_query
    // to free, exactly once.
    let cursor = unsafe {
        let result = pg_query_parse(input.as_ptr());
        let cursor = if result.error.is_null() { 0 } else { (*result.error).cursorpos };
        pg_query_free_parse_result(result);
        cursor
    };
    // cursorpos counts characters from 1; 0 means "no position".
    let chars = usize::try_from(cursor).ok()?.checked_sub(1)?;
    Some(text.char_indices().nth(chars).map_or(text.len(), |(i, _)| i))
}
