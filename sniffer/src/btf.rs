//! Just enough of a BTF reader to find struct field offsets in the running kernel.
//!
//! The kernel programs follow pointers through `task_struct`, `file`, `dentry`, `mount` and
//! friends; their layout changes between kernels and configurations, so the offsets are read
//! here from `/sys/kernel/btf/vmlinux` and passed to the programs before load.
//! Format: <https://docs.kernel.org/bpf/btf.html>.

use std::collections::HashMap;
use std::path::Path;

use sniffer_common::KernelOffsets;

/// Where the running kernel publishes its BTF.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// Errors reading BTF or finding a field in it.
#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    /// The file could not be read.
    #[error("cannot read kernel BTF at {path} (is CONFIG_DEBUG_INFO_BTF enabled?)")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The data is not BTF or is cut short.
    #[error("malformed BTF: {0}")]
    Malformed(&'static str),
    /// A struct the programs need is not in this kernel's BTF.
    #[error("kernel BTF has no struct {0}")]
    NoStruct(String),
    /// A field the programs need is not in this kernel's BTF.
    #[error("kernel BTF has no field {field} in struct {strukt}")]
    NoField {
        /// The struct searched.
        strukt: String,
        /// The field missing.
        field: String,
    },
}

const KIND_INT: u32 = 1;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

#[derive(Debug, Clone)]
struct Member {
    name: u32,
    type_id: u32,
    /// Bit offset from the start of the enclosing struct or union.
    bit_offset: u32,
}

#[derive(Debug, Clone)]
struct Type {
    name: u32,
    kind: u32,
    /// For modifiers and typedefs: the type referred to.
    type_ref: u32,
    members: Vec<Member>,
    /// For enums: the names of the values.
    enumerators: Vec<u32>,
}

/// Parsed BTF: types by id and the string section.
pub struct Btf {
    types: Vec<Type>,
    strings: Vec<u8>,
    structs_by_name: HashMap<String, u32>,
    funcs_by_name: HashMap<String, u32>,
}

fn u32_at(data: &[u8], at: usize) -> Result<u32, BtfError> {
    data.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).ok_or(BtfError::Malformed("truncated"))
}

impl Btf {
    /// Reads the running kernel's BTF.
    pub fn from_kernel() -> Result<Self, BtfError> {
        Self::from_file(Path::new(VMLINUX_BTF))
    }

    /// Reads BTF from a file.
    pub fn from_file(path: &Path) -> Result<Self, BtfError> {
        let data = std::fs::read(path).map_err(|source| BtfError::Read { path: path.display().to_string(), source })?;
        Self::parse(&data)
    }

    /// Parses raw little-endian BTF (header, types, strings).
    pub fn parse(data: &[u8]) -> Result<Self, BtfError> {
        if data.len() < 24 || data[0..2] != [0x9f, 0xeb] {
            return Err(BtfError::Malformed("bad magic (not little-endian BTF)"));
        }
        let hdr_len = u32_at(data, 4)? as usize;
        let type_off = u32_at(data, 8)? as usize;
        let type_len = u32_at(data, 12)? as usize;
        let str_off = u32_at(data, 16)? as usize;
        let str_len = u32_at(data, 20)? as usize;
        let types_at = hdr_len.checked_add(type_off).ok_or(BtfError::Malformed("offsets"))?;
        let strings_at = hdr_len.checked_add(str_off).ok_or(BtfError::Malformed("offsets"))?;
        let type_data = data
            .get(types_at..types_at.saturating_add(type_len))
            .ok_or(BtfError::Malformed("type section out of bounds"))?;
        let strings = data
            .get(strings_at..strings_at.saturating_add(str_len))
            .ok_or(BtfError::Malformed("string section out of bounds"))?
            .to_vec();

        // Type id 0 is void.
        let mut types = vec![Type { name: 0, kind: 0, type_ref: 0, members: Vec::new(), enumerators: Vec::new() }];
        let mut at = 0;
        while at < type_data.len() {
            let name = u32_at(type_data, at)?;
            let info = u32_at(type_data, at + 4)?;
            let size_or_type = u32_at(type_data, at + 8)?;
            at += 12;
            let kind = (info >> 24) & 0x1f;
            let vlen = (info & 0xffff) as usize;
            let kind_flag = info >> 31 == 1;
            let mut members = Vec::new();
            let mut enumerators = Vec::new();
            at += match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION => {
                    for i in 0..vlen {
                        let m = at + i * 12;
                        let offset = u32_at(type_data, m + 8)?;
                        members.push(Member {
                            name: u32_at(type_data, m)?,
                            type_id: u32_at(type_data, m + 4)?,
                            // With kind_flag, the top 8 bits hold a bitfield's size.
                            bit_offset: if kind_flag { offset & 0x00ff_ffff } else { offset },
                        });
                    }
                    vlen * 12
                }
                KIND_ENUM | KIND_ENUM64 => {
                    let size = if kind == KIND_ENUM { 8 } else { 12 };
                    for i in 0..vlen {
                        enumerators.push(u32_at(type_data, at + i * size)?);
                    }
                    vlen * size
                }
                KIND_FUNC_PROTO => vlen * 8,
                KIND_DATASEC => vlen * 12,
                k if k <= KIND_TYPE_TAG => 0,
                _ => return Err(BtfError::Malformed("unknown type kind")),
            };
            types.push(Type { name, kind, type_ref: size_or_type, members, enumerators });
        }

        let mut btf = Btf { types, strings, structs_by_name: HashMap::new(), funcs_by_name: HashMap::new() };
        for (id, ty) in btf.types.iter().enumerate() {
            // Forward declarations and empty structs have no members; keep the full one.
            if ty.kind == KIND_STRUCT && !ty.members.is_empty() {
                let name = btf.string(ty.name).to_string();
                btf.structs_by_name.entry(name).or_insert(id as u32);
            } else if ty.kind == KIND_FUNC {
                let name = btf.string(ty.name).to_string();
                btf.funcs_by_name.entry(name).or_insert(id as u32);
            }
        }
        Ok(btf)
    }

    fn string(&self, offset: u32) -> &str {
        let rest = self.strings.get(offset as usize..).unwrap_or_default();
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        std::str::from_utf8(&rest[..end]).unwrap_or("")
    }

    /// Follows typedefs and qualifiers to the underlying type.
    fn resolve(&self, mut id: u32) -> Option<&Type> {
        for _ in 0..32 {
            let ty = self.types.get(id as usize)?;
            match ty.kind {
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => id = ty.type_ref,
                _ => return Some(ty),
            }
        }
        None
    }

    /// Finds `field` in a struct or union, looking inside anonymous members; returns its
    /// byte offset and type id.
    fn find_member(&self, ty: &Type, field: &str) -> Option<(u32, u32)> {
        for m in &ty.members {
            if self.string(m.name) == field {
                return Some((m.bit_offset / 8, m.type_id));
            }
        }
        for m in ty.members.iter().filter(|m| m.name == 0) {
            let inner = self.resolve(m.type_id)?;
            if matches!(inner.kind, KIND_STRUCT | KIND_UNION)
                && let Some((off, id)) = self.find_member(inner, field)
            {
                return Some((m.bit_offset / 8 + off, id));
            }
        }
        None
    }

    /// Type id of the (complete) struct `name`.
    pub fn struct_id(&self, name: &str) -> Option<u32> {
        self.structs_by_name.get(name).copied()
    }

    /// Type id of the function `name`: how a program names a kfunc it calls.
    pub fn func_id(&self, name: &str) -> Option<u32> {
        self.funcs_by_name.get(name).copied()
    }

    /// Whether the enum `name` has the value `value`: how the kernel announces some verifier
    /// features (`enum bpf_features`).
    pub fn has_enumerator(&self, name: &str, value: &str) -> bool {
        self.types
            .iter()
            .filter(|t| matches!(t.kind, KIND_ENUM | KIND_ENUM64) && self.string(t.name) == name)
            .any(|t| t.enumerators.iter().any(|&v| self.string(v) == value))
    }

    /// Byte offset of a dotted field path in a struct: `offset("mnt_namespace", "ns.inum")`.
    pub fn offset(&self, strukt: &str, path: &str) -> Result<u32, BtfError> {
        let id = *self.structs_by_name.get(strukt).ok_or_else(|| BtfError::NoStruct(strukt.to_string()))?;
        let mut ty = &self.types[id as usize];
        let mut total = 0;
        for field in path.split('.') {
            let (off, type_id) = self
                .find_member(ty, field)
                .ok_or_else(|| BtfError::NoField { strukt: strukt.to_string(), field: path.to_string() })?;
            total += off;
            if let Some(next) = self.resolve(type_id) {
                ty = next;
            }
        }
        Ok(total)
    }

    /// Every offset the kernel programs need.
    pub fn kernel_offsets(&self) -> Result<KernelOffsets, BtfError> {
        Ok(KernelOffsets {
            task_files: self.offset("task_struct", "files")?,
            task_fs: self.offset("task_struct", "fs")?,
            task_mm: self.offset("task_struct", "mm")?,
            task_nsproxy: self.offset("task_struct", "nsproxy")?,
            task_cgroups: self.offset("task_struct", "cgroups")?,
            css_set_dfl_cgrp: self.offset("css_set", "dfl_cgrp")?,
            cgroup_kn: self.offset("cgroup", "kn")?,
            kernfs_node_id: self.offset("kernfs_node", "id")?,
            files_fdt: self.offset("files_struct", "fdt")?,
            fdt_fd: self.offset("fdtable", "fd")?,
            file_path: self.offset("file", "f_path")?,
            path_mnt: self.offset("path", "mnt")?,
            path_dentry: self.offset("path", "dentry")?,
            fs_root: self.offset("fs_struct", "root")?,
            dentry_parent: self.offset("dentry", "d_parent")?,
            dentry_name: self.offset("dentry", "d_name")?,
            qstr_name: self.offset("qstr", "name")?,
            vfsmount_root: self.offset("vfsmount", "mnt_root")?,
            mount_mnt: self.offset("mount", "mnt")?,
            mount_parent: self.offset("mount", "mnt_parent")?,
            mount_mountpoint: self.offset("mount", "mnt_mountpoint")?,
            mm_exe_file: self.offset("mm_struct", "exe_file")?,
            nsproxy_mnt_ns: self.offset("nsproxy", "mnt_ns")?,
            mnt_ns_inum: self.offset("mnt_namespace", "ns.inum")?,
            // Optional: a kernel without io_uring (or with another layout) gets no io_uring hook.
            io_kiocb_opcode: self.offset("io_kiocb", "opcode").unwrap_or(sniffer_common::NO_OFFSET),
            io_open_file_slot: match (self.offset("io_kiocb", "cmd"), self.offset("io_open", "file_slot")) {
                (Ok(cmd), Ok(slot)) => cmd + slot,
                _ => sniffer_common::NO_OFFSET,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_garbage() {
        assert!(matches!(Btf::parse(b"not btf at all, clearly"), Err(BtfError::Malformed(_))));
        let mut truncated = std::fs::read(VMLINUX_BTF).expect("this kernel publishes BTF");
        truncated.truncate(4096);
        assert!(Btf::parse(&truncated).is_err());
    }

    #[test]
    fn running_kernel_offsets_are_sane() {
        let btf = Btf::from_kernel().expect("kernel BTF");
        let off = btf.kernel_offsets().expect("every field present");
        // Layouts stable for years: path is { mnt; dentry }, qstr is { hash_len; name }.
        assert_eq!((off.path_mnt, off.path_dentry), (0, 8));
        assert_eq!(off.qstr_name, 8);
        // d_name follows d_parent in struct dentry.
        assert_eq!(off.dentry_name, off.dentry_parent + 8);
        assert!(off.task_files > 0 && off.task_fs > 0 && off.task_mm > 0);
        assert!(matches!(btf.offset("task_struct", "no_such_field"), Err(BtfError::NoField { .. })));
        // This kernel has io_uring: the opcode and an open's direct-descriptor slot.
        assert_ne!(off.io_kiocb_opcode, sniffer_common::NO_OFFSET);
        assert_ne!(off.io_open_file_slot, sniffer_common::NO_OFFSET);
        println!("io_kiocb.opcode {}, io_open.file_slot in io_kiocb {}", off.io_kiocb_opcode, off.io_open_file_slot);
    }

    #[test]
    fn running_kernel_enums_functions_and_structs_are_found() {
        let btf = Btf::from_kernel().expect("kernel BTF");
        assert!(btf.has_enumerator("bpf_map_type", "BPF_MAP_TYPE_HASH"));
        assert!(!btf.has_enumerator("bpf_map_type", "BPF_MAP_TYPE_NO_SUCH_THING"));
        assert!(!btf.has_enumerator("no_such_enum", "BPF_MAP_TYPE_HASH"));
        assert!(btf.func_id("bpf_get_current_task_btf").is_some());
        assert!(btf.func_id("no_such_function").is_none());
        let file = btf.struct_id("file").expect("struct file");
        assert_ne!(Some(file), btf.struct_id("dentry"));
    }
}
