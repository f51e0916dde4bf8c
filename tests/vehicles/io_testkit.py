"""A vehicle's Modbus TCP I/O module whose digital inputs are discrete inputs (FC2), served by pymodbus's
simulator server (as simulators/signals.py serves the signal controllers): the discrete-input block is
filled from `inputs` on every read, and `refuse` makes every request an exception reply."""

from __future__ import annotations

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

WORDS = 2  # 32 discrete inputs (and coils), 16 a register of the simulator's bit blocks
_READ_DISCRETE = 2


class DiscreteIoModule:
    """Discrete inputs 0..31 on `unit`: input n is bit n of `inputs`; coils and registers answer zeros."""

    def __init__(self, unit: int = 1) -> None:
        self.unit = unit
        self.inputs = 0
        self.refuse: ExcCodes | None = None
        self.requests = 0
        self._server: ModbusTcpServer | None = None

    def set_input(self, n: int, on: bool) -> None:
        self.inputs = self.inputs | 1 << n if on else self.inputs & ~(1 << n)

    def _device(self) -> SimDevice:
        bits = [SimData(0, count=16 * WORDS, values=False, datatype=DataType.BITS)]  # count: in bits
        regs = [SimData(0, count=1, datatype=DataType.REGISTERS)]
        return SimDevice(self.unit, simdata=(list(bits), bits, regs, list(regs)), action=self._action)

    async def _action(self, func_code: int, start: int, address: int, count: int, registers: list[int],
                      values: list[int] | list[bool] | None) -> ExcCodes | None:
        self.requests += 1
        if self.refuse is not None:
            return self.refuse
        if func_code == _READ_DISCRETE:
            registers[:WORDS] = [self.inputs >> 16 * i & 0xFFFF for i in range(WORDS)]
        return None

    async def start(self, port: int = 0) -> int:
        """Listen on 127.0.0.1:port (0: a free port); returns the port."""
        server = ModbusTcpServer(self._device(), address=("127.0.0.1", port))
        await server.serve_forever(background=True)
        self._server = server
        sockets = getattr(server.transport, "sockets", None)
        if not sockets:
            raise OSError(f"cannot listen on 127.0.0.1:{port}")
        return int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """The module dies: the server and its connections close."""
        if self._server is not None:
            await self._server.shutdown()
            self._server = None
