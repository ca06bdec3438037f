//! Reading topology files: expand directories, split multi-document YAML, and find the line
//! of a key so that every diagnostic can say `file:line`.

use super::Error;
use std::path::{Path, PathBuf};

/// One YAML document of one file, with the line it starts on.
#[derive(Debug, Clone)]
pub struct Document {
    /// The file it came from.
    pub file: PathBuf,
    /// 1-based line of the document's first line in `file`.
    pub first_line: usize,
    /// The document's text (without the `---` separator).
    pub text: String,
}

/// A place in a topology file, printed as `file:line`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// Expands the given paths (files, or directories read one level deep for `*.yaml`/`*.yml`)
/// into a sorted, de-duplicated list of files.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    let mut files = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            files.push(path.clone());
            continue;
        }
        let meta = std::fs::metadata(path).map_err(|source| Error::Read { path: path.clone(), source })?;
        if meta.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|source| Error::Read { path: path.clone(), source })?;
            let mut found = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|source| Error::Read { path: path.clone(), source })?;
                let p = entry.path();
                let is_yaml = matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"));
                if !is_yaml {
                    continue;
                }
                // Something named like a topology file that is not one is a mistake to report,
                // not a file to skip: the topology would silently lack its documents.
                match std::fs::metadata(&p) {
                    Ok(m) if m.is_file() => found.push(p),
                    Ok(m) => {
                        let what = if m.is_dir() { "a directory" } else { "not a regular file (a FIFO, socket or device)" };
                        return Err(Error::NotAFile { path: p, what: what.into() });
                    }
                    Err(_) if std::fs::symlink_metadata(&p).is_ok() => {
                        return Err(Error::NotAFile { path: p, what: "a symbolic link to nothing".into() });
                    }
                    Err(source) => return Err(Error::Read { path: p, source }),
                }
            }
            if found.is_empty() {
                return Err(Error::NoDocuments { path: path.clone() });
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    files.dedup();
    Ok(files)
}

/// Reads a file and splits it into its non-empty documents.
/// Reads a file (`-`: standard input) and splits it into its non-empty documents.
pub fn read(file: &Path) -> Result<Vec<Document>, Error> {
    let read_error = |source| Error::Read { path: file.to_path_buf(), source };
    let bytes = if file.as_os_str() == "-" { stdin().map_err(read_error)? } else { std::fs::read(file).map_err(read_error)? };
    let text = decode(file, &bytes)?;
    Ok(split(file, &text))
}

/// Standard input, read once: apply loads the topology more than once.
fn stdin() -> std::io::Result<Vec<u8>> {
    static STDIN: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    if let Some(bytes) = STDIN.get() {
        return Ok(bytes.clone());
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut bytes)?;
    Ok(STDIN.get_or_init(|| bytes).clone())
}

/// The text of `bytes`, or an error naming the byte offset and line of the first byte that is
/// not UTF-8.
pub fn decode(file: &Path, bytes: &[u8]) -> Result<String, Error> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text.to_string()),
        Err(e) => {
            let offset = e.valid_up_to();
            let line = bytes[..offset].iter().filter(|b| **b == b'\n').count() + 1;
            Err(Error::NotUtf8 { path: file.to_path_buf(), offset, line })
        }
    }
}

/// Splits multi-document YAML on `---` lines. A document holding only comments or blank lines
/// is dropped, as KKP's own tooling does.
pub fn split(file: &Path, text: &str) -> Vec<Document> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut first_line = 1;
    for (index, line) in text.lines().enumerate() {
        if is_separator(line) {
            push_doc(&mut docs, file, first_line, std::mem::take(&mut current));
            first_line = index + 2;
            continue;
        }
        if line.trim_end() == "..." {
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    push_doc(&mut docs, file, first_line, current);
    docs
}

fn is_separator(line: &str) -> bool {
    line == "---" || line.starts_with("--- ") || line.starts_with("---\t") || line.starts_with("---#")
}

fn push_doc(docs: &mut Vec<Document>, file: &Path, first_line: usize, text: String) {
    let has_content = text.lines().any(|l| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with('#')
    });
    if has_content {
        docs.push(Document { file: file.to_path_buf(), first_line, text });
    }
}

impl Document {
    /// The source position of the document itself.
    pub fn source(&self) -> Source {
        Source { file: self.file.clone(), line: self.first_line }
    }

    /// The source position of a key path such as `["spec", "cloud", "dc"]` in block-style YAML.
    /// Falls back to the closest enclosing key that was found (or the document start), so a
    /// diagnostic always points somewhere useful.
    pub fn locate(&self, path: &[&str]) -> Source {
        let mut line_no = self.first_line;
        let mut parent_indent: Option<usize> = None;
        let lines: Vec<&str> = self.text.lines().collect();
        let mut from = 0;
        'segments: for segment in path {
            for (i, line) in lines.iter().enumerate().skip(from) {
                let trimmed = line.trim_start();
                if trimmed.is_empty() || trimmed.starts_with('#') {
                    continue;
                }
                let indent = line.len() - trimmed.len();
                if parent_indent.is_some_and(|p| indent <= p) {
                    break;
                }
                let key = trimmed.trim_start_matches("- ");
                let matches = key.strip_prefix(segment).is_some_and(|rest| rest.starts_with(':'))
                    || key.strip_prefix(&format!("\"{segment}\"")).is_some_and(|rest| rest.starts_with(':'));
                if matches {
                    line_no = self.first_line + i;
                    parent_indent = Some(indent);
                    from = i + 1;
                    continue 'segments;
                }
            }
            break;
        }
        Source { file: self.file.clone(), line: line_no }
    }
}

/// The place of a key path (e.g. `["spec", "version"]`) inside the document that starts at
/// `document`, read again from its file; the document's start when the file changed or the key
/// is not there.
pub fn locate_in_file(document: &Source, path: &[&str]) -> Source {
    let Ok(text) = std::fs::read_to_string(&document.file) else { return document.clone() };
    split(&document.file, &text).into_iter().find(|d| d.first_line == document.line).map_or_else(|| document.clone(), |d| d.locate(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_DOCS: &str = "# leading comment\n---\napiVersion: v1\nkind: Secret\n---\n# only a comment\n---\nkind: Seed\nspec:\n  datacenters:\n    dc1:\n      spec:\n        aws: {}\n";

    #[test]
    fn splits_documents_and_keeps_their_line_numbers() {
        let docs = split(Path::new("t.yaml"), TWO_DOCS);
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].first_line, 3);
        assert_eq!(docs[1].first_line, 8);
        assert!(docs[1].text.starts_with("kind: Seed"));
    }

    #[test]
    fn locates_nested_keys() {
        let docs = split(Path::new("t.yaml"), TWO_DOCS);
        assert_eq!(docs[1].locate(&["spec", "datacenters", "dc1", "spec", "aws"]).line, 13);
        // A missing key points at the nearest ancestor that exists.
        assert_eq!(docs[1].locate(&["spec", "datacenters", "nope"]).line, 10);
    }

    #[test]
    fn locate_does_not_leave_the_parent_block() {
        let text = "spec:\n  cloud:\n    aws: {}\n  version: 1.2.3\nstatus:\n  dc: x\n";
        let docs = split(Path::new("t.yaml"), text);
        // `dc` exists only under status, not under spec.cloud.
        assert_eq!(docs[0].locate(&["spec", "cloud", "dc"]).line, 2);
    }
}
