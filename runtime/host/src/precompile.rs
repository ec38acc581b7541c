//! Precompiled components (`.cwasm`): how they are named, and compiling them
//! ahead of time for another machine.
//!
//! A sandbox looks for `<component sha256>-<engine tag>.cwasm` in its
//! precompiled directories, then in its cache directory. The engine tag is a
//! sha256 of wasmtime's [`Engine::precompile_compatibility_hash`] (wasmtime
//! version, target triple, Cranelift flags, tunables, wasm features) for the
//! *portable* engine of a triple: [`SandboxConfig::wasmtime_config`] with an
//! explicit target, so without the CPU features wasmtime would detect on the
//! machine. The tag therefore depends only on the configuration and the
//! triple: computed on an x86_64 packaging machine for
//! `aarch64-unknown-linux-gnu`, it equals the one the arm64 Lambda function
//! computes for itself. The hash is fed through sha256 rather than std's
//! `DefaultHasher`, whose output may change between Rust releases.
//!
//! Whether a file found under that name can really run here is wasmtime's
//! call: its deserialization checks the triple, the flags (an ISA feature the
//! file uses must be present on this CPU), the tunables and the features,
//! and the sandbox compiles the component instead when it refuses (with a
//! warning naming the file and the reason).

use crate::error::HostError;
use crate::sandbox::{ComponentBytes, SandboxConfig};
use cairn_core::ComponentHash;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use wasmtime::{Engine, Precompiled};

/// The triple this process runs on, as wasmtime names it
/// (`x86_64-unknown-linux-gnu`, `aarch64-unknown-linux-gnu`, ...).
pub fn host_target() -> String {
    target_lexicon::HOST.to_string()
}

/// The file name of `hash`'s precompiled form for the engine `engine_tag`.
pub fn file_name(hash: &ComponentHash, engine_tag: &str) -> String {
    format!("{hash}-{engine_tag}.cwasm")
}

/// A `std::hash::Hasher` that feeds sha256: the same bytes give the same
/// tag on every machine and Rust release (integers are hashed in native
/// byte order: every target Cairn runs on is little-endian and 64-bit).
struct StableHasher(Sha256);

impl std::hash::Hasher for StableHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(digest[..8].try_into().expect("sha256 has 32 bytes"))
    }
}

/// The tag of `engine`: 16 hex digits of the sha256 of its precompile
/// compatibility hash.
fn tag_of(engine: &Engine) -> String {
    use std::hash::Hash;
    let mut h = StableHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    hex::encode(&h.0.finalize()[..8])
}

fn portable_engine(config: &SandboxConfig, target: &str) -> Result<Engine, HostError> {
    Engine::new(&config.wasmtime_config(Some(target))?).map_err(|e| {
        HostError::Internal(format!(
            "cannot build a wasmtime engine for {target} (is Cranelift's backend for it compiled in?): {e:#}"
        ))
    })
}

/// The engine tag of precompiled files for `target` under `config`: what
/// the file names of a sandbox running on `target` carry.
pub fn engine_tag(config: &SandboxConfig, target: &str) -> Result<String, HostError> {
    Ok(tag_of(&portable_engine(config, target)?))
}

/// Compiles components ahead of time for a target triple, with the exact
/// engine configuration a [`crate::Sandbox`] with the same
/// [`SandboxConfig`] uses, so that a sandbox on that target finds the files
/// (same name) and wasmtime accepts them (same compilation settings).
///
/// The code uses the target's baseline CPU features (no detection: the
/// machine that runs it is not this one).
pub struct Precompiler {
    engine: Engine,
    target: String,
    tag: String,
    /// The `.wasmtime.engine` section of this engine's output: what wasmtime
    /// checks against the loading engine.
    engine_section: Vec<u8>,
}

impl std::fmt::Debug for Precompiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Precompiler")
            .field("target", &self.target)
            .field("tag", &self.tag)
            .finish()
    }
}

/// The smallest component: a header and no sections.
const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\x00\x01\x00";

impl Precompiler {
    /// An engine for `target` (e.g. `aarch64-unknown-linux-gnu`).
    pub fn new(config: &SandboxConfig, target: &str) -> Result<Self, HostError> {
        let engine = portable_engine(config, target)?;
        let reference = engine
            .precompile_component(EMPTY_COMPONENT)
            .map_err(|e| HostError::Internal(format!("cannot precompile for {target}: {e:#}")))?;
        let engine_section = elf::section(&reference, ENGINE_SECTION)
            .map_err(|e| HostError::Internal(format!("wasmtime's own output: {e}")))?
            .to_vec();
        Ok(Self {
            tag: tag_of(&engine),
            target: target.to_string(),
            engine,
            engine_section,
        })
    }

    /// The target triple.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The engine tag of the files it writes.
    pub fn engine_tag(&self) -> &str {
        &self.tag
    }

    /// The file name a sandbox on the target looks for.
    pub fn file_name(&self, hash: &ComponentHash) -> String {
        file_name(hash, &self.tag)
    }

    /// Compiles `component`: the bytes of its `.cwasm`.
    pub fn precompile(&self, component: &ComponentBytes) -> Result<Vec<u8>, HostError> {
        crate::sandbox::check_header(&component.bytes)?;
        self.engine
            .precompile_component(&component.bytes)
            .map_err(|e| {
                HostError::NotAComponent(format!(
                    "the file is not a valid WebAssembly component: {e:#}"
                ))
            })
    }

    /// Compiles `component` into `dir` (created if missing) under the name
    /// the target's sandbox looks for, atomically (a temporary file renamed
    /// into place); returns its path.
    pub fn write(&self, component: &ComponentBytes, dir: &Path) -> Result<PathBuf, HostError> {
        let bytes = self.precompile(component)?;
        let path = dir.join(self.file_name(&component.hash));
        let io = |e: std::io::Error| HostError::Internal(format!("{}: {e}", path.display()));
        std::fs::create_dir_all(dir).map_err(io)?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, &bytes).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        Ok(path)
    }

    /// Checks, without running on the target, that `bytes` is a `.cwasm` a
    /// sandbox on the target accepts. Wasmtime refuses to load code for
    /// another architecture into this process, so this checks what its
    /// loader checks, from the file:
    ///
    /// 1. [`Engine::detect_precompiled`]: a wasmtime artifact, of a
    ///    component;
    /// 2. the ELF header's machine is the target's architecture;
    /// 3. its `.wasmtime.engine` section (wasmtime version, target triple,
    ///    Cranelift's shared and ISA flags, tunables, wasm features: all
    ///    that wasmtime's compatibility check compares with the loading
    ///    engine) is byte for byte the one this engine (the sandbox's
    ///    configuration, for the target) writes.
    ///
    /// Wasmtime then accepts it on the target when that machine's engine has
    /// the same tunables and features (same configuration and triple: same
    /// tag) and supports the ISA flags enabled in it (none beyond the
    /// baseline: this engine enables no optional CPU feature).
    pub fn check(&self, bytes: &[u8]) -> Result<(), String> {
        match Engine::detect_precompiled(bytes) {
            Some(Precompiled::Component) => {}
            Some(Precompiled::Module) => {
                return Err("a precompiled core module, not a component".into());
            }
            None => return Err("not a wasmtime precompiled artifact".into()),
        }
        let expected = elf::machine(&self.target)
            .ok_or_else(|| format!("no ELF machine known for {}", self.target))?;
        let machine = elf::header_machine(bytes)?;
        if machine != expected {
            return Err(format!(
                "compiled for ELF machine {machine}, but {} is machine {expected}",
                self.target
            ));
        }
        let section = elf::section(bytes, ENGINE_SECTION)?;
        if section != self.engine_section.as_slice() {
            return Err(format!(
                "its {ENGINE_SECTION} section (wasmtime version, flags, tunables, features) differs from the one this engine writes for {}",
                self.target
            ));
        }
        Ok(())
    }
}

/// The section wasmtime writes its compilation settings into.
const ENGINE_SECTION: &str = ".wasmtime.engine";

/// Just enough ELF64 (little-endian) reading for [`Precompiler::check`].
mod elf {
    fn u16_at(b: &[u8], at: usize) -> Result<u16, String> {
        b.get(at..at + 2)
            .map(|s| u16::from_le_bytes([s[0], s[1]]))
            .ok_or_else(|| "truncated ELF".to_string())
    }

    fn u32_at(b: &[u8], at: usize) -> Result<u32, String> {
        b.get(at..at + 4)
            .map(|s| u32::from_le_bytes(s.try_into().expect("4 bytes")))
            .ok_or_else(|| "truncated ELF".to_string())
    }

    fn u64_at(b: &[u8], at: usize) -> Result<usize, String> {
        b.get(at..at + 8)
            .map(|s| u64::from_le_bytes(s.try_into().expect("8 bytes")) as usize)
            .ok_or_else(|| "truncated ELF".to_string())
    }

    /// `e_machine` of an ELF64 little-endian file.
    pub fn header_machine(b: &[u8]) -> Result<u16, String> {
        if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
            return Err("not a 64-bit little-endian ELF file".into());
        }
        u16_at(b, 18)
    }

    /// The ELF machine of a target triple's architecture.
    pub fn machine(target: &str) -> Option<u16> {
        match target.split('-').next()? {
            "x86_64" => Some(62),
            "aarch64" => Some(183),
            "riscv64" | "riscv64gc" => Some(243),
            "s390x" => Some(22),
            _ => None,
        }
    }

    /// The bytes of section `name`.
    pub fn section<'a>(b: &'a [u8], name: &str) -> Result<&'a [u8], String> {
        header_machine(b)?;
        let shoff = u64_at(b, 0x28)?;
        let shentsize = usize::from(u16_at(b, 0x3a)?);
        let shnum = usize::from(u16_at(b, 0x3c)?);
        let shstrndx = usize::from(u16_at(b, 0x3e)?);
        let truncated = || "truncated ELF".to_string();
        let header = |i: usize| {
            i.checked_mul(shentsize)
                .and_then(|o| o.checked_add(shoff))
                .ok_or_else(truncated)
        };
        let strtab = u64_at(b, header(shstrndx)?.saturating_add(24))?;
        for i in 0..shnum {
            let h = header(i)?;
            let name_at = strtab.saturating_add(u32_at(b, h)? as usize);
            let found = b
                .get(name_at..)
                .and_then(|s| s.split(|c| *c == 0).next())
                .ok_or_else(truncated)?;
            if found == name.as_bytes() {
                let (offset, size) = (u64_at(b, h + 24)?, u64_at(b, h + 32)?);
                return b
                    .get(offset..offset.saturating_add(size))
                    .ok_or_else(truncated);
            }
        }
        Err(format!("no {name} section"))
    }
}
