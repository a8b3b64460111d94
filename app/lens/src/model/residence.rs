//! Where a model's blocks live: all in memory (resident), or read from the file one at a time as
//! a forward pass reaches each (streamed). The lens needs every block once per prompt, so a model
//! larger than the tab can still draw its figure while holding one block's weights at a time.
//! Generation needs every block for each new token, so a streamed model draws the lens only.

use super::Hyper;
use crate::error::Result;
use crate::gguf::GgufFile;
use std::ops::{Deref, DerefMut};
use std::rc::Rc;

/// How a model was asked to load.
#[derive(Clone)]
pub enum Residence {
    Resident,
    /// Blocks are read from this file when a forward pass needs them.
    Streamed(Rc<GgufFile<'static>>),
}

/// Reads block `i` of an architecture from a file.
pub type LoadBlock<B> = Box<dyn Fn(&GgufFile, &Hyper, usize) -> Result<B>>;

pub enum Layers<B> {
    Resident(Vec<B>),
    Streamed { file: Rc<GgufFile<'static>>, hyper: Hyper, load: LoadBlock<B> },
}

/// A block for the length of one step of a forward pass: borrowed when resident, owned (and
/// dropped after the step) when streamed.
pub enum Held<'a, B> {
    Borrowed(&'a mut B),
    Owned(B),
}

impl<B> Layers<B> {
    /// Loads every block now (resident), or checks that the first and last blocks load and keeps
    /// the file for later (streamed), so a malformed file fails at load rather than mid-figure.
    pub fn load(g: &GgufFile, hyper: &Hyper, residence: &Residence, load: LoadBlock<B>) -> Result<Self> {
        match residence {
            Residence::Resident => {
                Ok(Layers::Resident((0..hyper.n_layers).map(|i| load(g, hyper, i)).collect::<Result<Vec<_>>>()?))
            }
            Residence::Streamed(file) => {
                load(file, hyper, 0)?;
                load(file, hyper, hyper.n_layers - 1)?;
                Ok(Layers::Streamed { file: file.clone(), hyper: hyper.clone(), load })
            }
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Layers::Resident(blocks) => blocks.len(),
            Layers::Streamed { hyper, .. } => hyper.n_layers,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn streamed(&self) -> bool {
        matches!(self, Layers::Streamed { .. })
    }

    /// Block `i`, read from the file if streamed.
    pub fn get(&mut self, i: usize) -> Result<Held<'_, B>> {
        match self {
            Layers::Resident(blocks) => Ok(Held::Borrowed(&mut blocks[i])),
            Layers::Streamed { file, hyper, load } => Ok(Held::Owned(load(file, hyper, i)?)),
        }
    }

    /// The blocks in memory (none when streamed).
    pub fn resident(&self) -> &[B] {
        match self {
            Layers::Resident(blocks) => blocks,
            Layers::Streamed { .. } => &[],
        }
    }

    pub fn resident_mut(&mut self) -> &mut [B] {
        match self {
            Layers::Resident(blocks) => blocks,
            Layers::Streamed { .. } => &mut [],
        }
    }
}

impl<B> Deref for Held<'_, B> {
    type Target = B;
    fn deref(&self) -> &B {
        match self {
            Held::Borrowed(b) => b,
            Held::Owned(b) => b,
        }
    }
}

impl<B> DerefMut for Held<'_, B> {
    fn deref_mut(&mut self) -> &mut B {
        match self {
            Held::Borrowed(b) => b,
            Held::Owned(b) => b,
        }
    }
}
