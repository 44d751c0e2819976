# Shared build helpers.

# Sources of a library are globbed per folder so that adding a file needs no CMake edit.
function(mpibert_glob_sources out)
  set(result)
  foreach(dir ${ARGN})
    file(GLOB files CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${dir}/*.cpp)
    list(APPEND result ${files})
  endforeach()
  set(${out} ${result} PARENT_SCOPE)
endfunction()

# mpirun flags for CTest: root needs --allow-run-as-root; --oversubscribe lets 4 ranks run on 2 cores.
# Containers often forbid the cross-memory-attach single copy of the shared-memory transport (ptrace
# scope), which makes vader fail at run time: turn it off, the copy-in/copy-out path is always available.
execute_process(COMMAND id -u OUTPUT_VARIABLE MPIBERT_UID OUTPUT_STRIP_TRAILING_WHITESPACE)
set(MPIBERT_MPIRUN_FLAGS --oversubscribe --bind-to none --mca btl_vader_single_copy_mechanism none
    --mca btl ^openib --mca rmaps_base_oversubscribe 1)
if(MPIBERT_UID STREQUAL "0")
  list(APPEND MPIBERT_MPIRUN_FLAGS --allow-run-as-root)
endif()

# mpibert_add_mpi_test(NAME target NP n [TIMEOUT s] [ARGS ...]): runs target under mpirun with n ranks.
# Each rank takes a processor, so parallel CTest never runs more ranks than it was told it may.
function(mpibert_add_mpi_test name)
  cmake_parse_arguments(T "" "TARGET;NP;TIMEOUT" "ARGS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  math(EXPR T_TIMEOUT "${T_TIMEOUT} * ${MPIBERT_TEST_TIMEOUT_SCALE}")
  add_test(NAME ${name}
           COMMAND ${MPIEXEC_EXECUTABLE} ${MPIBERT_MPIRUN_FLAGS} -np ${T_NP} $<TARGET_FILE:${T_TARGET}> ${T_ARGS})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT} PROCESSORS ${T_NP}
                       ENVIRONMENT "OMP_NUM_THREADS=1;OPENBLAS_NUM_THREADS=1")
endfunction()
