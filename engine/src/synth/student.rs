//! Playing a Parallel WaveNet student inside the [`super::Engine`]: whether a directory
//! holds one. (Loading it is [`crate::train::student::load_identified`]; generating is
//! `autoencoder::student::generate::StudentGenerator`, the family's [`autoencoder::Generator`].)

use std::path::Path;

use crate::train::student::STUDENT_FILE;

/// Whether `dir` holds a student.
pub fn is_student(dir: &Path) -> bool {
    dir.join(STUDENT_FILE).is_file()
}
