# LED-current control for the MAX30102: keeps the PPG's DC level in the ADC's useful range.
from nsdev.core.ppgdefs import ADC_FULL_SCALE, NO_CONTACT_COUNTS, SAT_COUNTS


class LEDController:
    """Proposes LED currents that keep the DC level in the ADC's useful range.

    Codes are the MAX30102 LED pulse-amplitude register values (0.2 mA per LSB, 0x00-0xFF,
    datasheet 19-7740). Call update() about once per second with the pipeline's DC levels;
    it returns None (no change) or (red_code, ir_code). Hysteresis: a change is proposed only
    when DC has been outside lo..hi % of full scale for `hold` consecutive calls (at once when
    near saturation), and it aims at target %. With no contact (DC < 5% FS) it keeps quiet.
    """

    def __init__(self, red_code=0x24, ir_code=0x24, lo_pct=30, hi_pct=80, target_pct=55,
                 hold=3, min_code=1, max_code=255):
        self.red_code = red_code
        self.ir_code = ir_code
        self.lo = ADC_FULL_SCALE * lo_pct // 100
        self.hi = ADC_FULL_SCALE * hi_pct // 100
        self.target = ADC_FULL_SCALE * target_pct // 100
        self.hold = hold
        self.min_code = min_code
        self.max_code = max_code
        self._out_red = 0
        self._out_ir = 0

    def _one(self, dc, code, count):
        if dc < NO_CONTACT_COUNTS:
            return code, 0
        if self.lo <= dc <= self.hi:
            return code, 0
        count += 1
        if count < self.hold and dc < SAT_COUNTS * 95 // 100:
            return code, count
        new = code * self.target // dc if dc > 0 else self.max_code
        if new < self.min_code:
            new = self.min_code
        if new > self.max_code:
            new = self.max_code
        if new == code and dc > self.hi and code > self.min_code:
            new = code - 1
        elif new == code and dc < self.lo and code < self.max_code:
            new = code + 1
        return new, 0

    def update(self, dc_red, dc_ir):
        red, self._out_red = self._one(dc_red, self.red_code, self._out_red)
        ir, self._out_ir = self._one(dc_ir, self.ir_code, self._out_ir)
        if red == self.red_code and ir == self.ir_code:
            return None
        self.red_code = red
        self.ir_code = ir
        return red, ir
